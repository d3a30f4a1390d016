"""The mandatory break through the real TUI against the real server (in-process, FakeClock):
after the Nth escalation-flagged clip the server refuses leases, the TUI shows the break screen
with a countdown, nothing is leased while it shows, and work resumes when the server's clock
says the break is over."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from annotator.app import AnnotatorApp
from annotator.prefetch import PrefetchState
from annotator.screens.break_screen import BreakScreen, countdown
from annotator.screens.wellbeing import WellbeingScreen
from api.welfare import WelfarePolicy, WelfareState
from tests.fixtures.server import ClockedServer
from tests.tui.fakes import make_app, ready_clip
from tests.tui.helpers import services_for, type_text, wait_for_clip, wait_until

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


def leases_of(server: ClockedServer, person: str) -> int:
    repo = server.repo
    with repo._read() as conn:
        row = repo._one(conn, "SELECT COUNT(*) FROM leases WHERE annotator = ?", (person,))
    return int(row[0])


@pytest.mark.one_backend
async def test_break_screen_after_flagged_clips_counts_down_and_leases_nothing(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(break_after_flagged=1, break_minutes=10)
    server.ingest(test_wavs(8))
    target: Any = SimpleNamespace(url=server.url, annotator_token=server.token("ann1"))
    services = services_for(target)
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            await type_text(pilot, "help me")
            await pilot.press("ctrl+l")
            await type_text(pilot, "generalquirky")
            await pilot.press("enter", "alt+shift+d")
            await type_text(pilot, "crying")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, WellbeingScreen))
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, BreakScreen), timeout=15)
            shown = app.screen
            assert isinstance(shown, BreakScreen)
            assert services.prefetcher.status.state is PrefetchState.ON_BREAK
            assert "10-minute break" in shown.reason
            # It said "new clips from 2026-12-02T03:02:48+00:00 (in 600 s)".
            assert shown.reason.endswith(" UTC (in 10 min)"), shown.reason
            assert not re.search(r"\d{4}-\d\d-\d\dT", shown.reason)
            text = str(shown.query_one("#break-countdown").render())
            assert text.startswith(("10:00", "9:5")) and text.endswith("left")
            assert not services.player.playing
            held = leases_of(server, "ann1")
            await pilot.press("enter")  # the break is not skippable
            await pilot.pause(1.5)
            assert isinstance(app.screen, BreakScreen)
            services.prefetcher.wake()  # even a "network is back" wake asks for nothing
            await pilot.pause(1.0)
            assert leases_of(server, "ann1") == held
            assert screen.current is not None  # the clips already held stay held
            # The server's clock says the break is over: the screen follows it, Enter closes it,
            # and leasing starts again.
            server.clock.advance(10 * 60)
            await wait_until(
                pilot,
                lambda: "over" in str(shown.query_one("#break-countdown").render()),
                timeout=8,
            )
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, BreakScreen))
            await wait_until(pilot, lambda: leases_of(server, "ann1") > held, timeout=10)
            assert services.prefetcher.status.state is not PrefetchState.ON_BREAK
    finally:
        services.shutdown()


async def test_break_screen_follows_the_server_and_only_then_lets_go(tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1)])
    closed: list[bool] = []
    policy = WelfarePolicy(break_after_flagged=3, break_minutes=15, max_continuous_minutes=120)
    answers = [
        WelfareState(policy=policy, on_break=True, seconds_left=125, flagged_since_break=0),
        WelfareState(policy=policy, on_break=False, flagged_since_break=0),
    ]
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app._annotate_screen() is not None)
        reason = "time for a 15-minute break after 3 escalation-flagged clips; new clips at 03:02"
        screen = BreakScreen(time.monotonic() + 600, reason, check=lambda: answers[0])
        app.push_screen(screen, lambda _: closed.append(True))
        await pilot.pause()
        # At 80×24 the hint was cut to "… No new clips are leased until the break".
        box = screen.query_one("#break").content_region
        for part in ("#break-reason", "#break-countdown", "#break-hint"):
            assert box.contains_region(screen.query_one(part).region), part
        await pilot.press("enter")
        await pilot.pause()
        assert not closed
        # The server says 125 s left: the countdown follows it.
        await wait_until(pilot, lambda: screen.remaining < 130, timeout=5)
        assert str(screen.query_one("#break-countdown").render()).startswith("2:0")
        answers.pop(0)  # ...then that the break is over
        await wait_until(
            pilot, lambda: "over" in str(screen.query_one("#break-countdown").render()), 5
        )
        await pilot.press("enter")
        await pilot.pause()
        assert closed == [True]
    assert countdown(61.2) == "1:02" and countdown(0) == "0:00"
