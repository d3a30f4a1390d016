"""The opt-out screen through the real TUI against a real `annotator serve` (K = 2): a person opens
it by key, sees their current opt-outs, chooses `minor` by keyboard, saves — the server keeps it
(`PUT /v1/me/opt-outs`, as `annotator welfare --opt-out` does) and then never serves them the
clip an earlier annotator flagged `minor`, while the others (an `explicit` one included) are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import SelectionList

from annotator.app import AnnotatorApp
from annotator.screens.commands import ActionCommands
from annotator.screens.opt_outs import OptOutScreen
from api.client import QueueClient, new_idempotency_key
from api.models import AnnotationIn
from tests.fixtures.server import LiveServer
from tests.tui.helpers import services_for, wait_until
from tests.tui.test_opt_outs import leased_clips


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


def _chosen(app: AnnotatorApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, OptOutScreen)
    return sorted(screen.query_one(SelectionList).selected)


async def test_opting_out_from_the_tui_keeps_the_flagged_clip_away(
    make_live_server: Callable[..., LiveServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_live_server("--annotations-per-clip", "2", "--break-after-flagged", "0")
    server.ingest(test_wavs(3))
    first = QueueClient(server.url, server.annotator_token)
    # The first annotator holds every clip, so nothing reaches bob before he has chosen.
    leases = first.lease(3).leases
    bob_token = server.new_token("bob")
    bob = QueueClient(server.url, bob_token)

    server.annotator_token = bob_token
    services = services_for(server)
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_until(pilot, lambda: app._annotate_screen() is not None)
            await pilot.press("alt+shift+w")
            await wait_until(pilot, lambda: isinstance(app.screen, OptOutScreen))
            assert _chosen(app) == []  # the current state: nothing
            await pilot.press("1")  # distress on, then off again
            assert _chosen(app) == ["distress"]
            await pilot.press("1", "4")  # minor (the exposure categories come first)
            assert _chosen(app) == ["minor"]
            await pilot.press("enter")
            await wait_until(pilot, lambda: bob.welfare().opt_outs == ["minor"])

            # Reopened from the palette: it shows what the server keeps; Escape changes nothing.
            hits = [h async for h in ActionCommands(app.screen).search("Opt out")]
            assert hits and "app.opt-outs" in str(hits[0].help)
            await pilot.press("alt+shift+w")
            await wait_until(pilot, lambda: isinstance(app.screen, OptOutScreen))
            assert _chosen(app) == ["minor"]
            await pilot.press("2", "escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, OptOutScreen))
            assert bob.welfare().opt_outs == ["minor"]

            for i, lease in enumerate(leases):
                first.submit(
                    AnnotationIn(
                        lease_id=lease.lease_id,
                        fence=lease.fence,
                        transcript="play something",
                        intent="weather_query",
                        flags=[["minor"], [], ["explicit"]][i],
                    ),
                    new_idempotency_key(),
                )
            await wait_until(pilot, lambda: len(leased_clips(server, "bob")) == 2, timeout=30)
            await pilot.pause(0.5)  # the prefetcher asked for more: nothing else is served
            assert leased_clips(server, "bob") == {leases[1].clip.clip_id, leases[2].clip.clip_id}
    finally:
        services.shutdown()
