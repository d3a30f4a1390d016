"""The console's quality view (issue 12): against the real server (in-process, FakeClock) with
real annotations through the real client, the numbers computed by hand here; the key, help and
palette; and snapshots at 80×24 and 200×60 from a fixed report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from annotator.actions import actions_for
from annotator.supervise.app import SuperviseApp
from annotator.supervise.screens.quality import QualityScreen
from api.client import QueueClient
from api.models import Timings
from api.quality_models import QualityReport
from api.server.quality_rules import Expected
from api.server.quality_store import GoldAnswer, QualityStore
from tests.fixtures.server import ClockedServer
from tests.fixtures.snapshots import freeze_moving_parts
from tests.server.helpers import annotation, key
from tests.supervise.fakes import FakeSupervisorClient, default_rows, make_console
from tests.supervise.test_console_keys import loaded, until
from tests.supervise.test_console_server import services_for

SMALL, LARGE = (80, 24), (200, 60)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    for name in ("ANNOTATOR_AUDIO", "ANNOTATOR_KEYMAP", "ANNOTATOR_RELAY"):
        monkeypatch.delenv(name, raising=False)


def _text(widget: Static) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


async def _quality(pilot: Pilot[Any]) -> QualityScreen:
    await loaded(pilot)
    await pilot.press("y")
    await until(pilot, lambda: isinstance(pilot.app.screen, QualityScreen), "the quality view")
    screen = pilot.app.screen
    assert isinstance(screen, QualityScreen)
    await until(pilot, lambda: screen.report is not None, "the report")
    await pilot.pause()
    return screen


async def test_the_quality_view_shows_the_servers_numbers(
    make_clocked_server: Callable[..., ClockedServer],
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Gold rate 1: each person is dealt the one gold clip, then the two ordinary clips.
    server = make_clocked_server(gold_rate=1.0, annotations_per_clip=2)
    gold, c1, c2 = server.ingest(test_wavs(3))
    QualityStore(server.repo).put_gold(
        [GoldAnswer(gold, Expected("wake me up at seven", "alarm_set", frozenset()))],
        server.clock.now(),
    )
    server.clock.advance(60)  # 09:01 UTC
    # (intent on gold, c1, c2; active seconds on each): alice in the 09:00 hour, bob at 10:00.
    said = {
        "alice": ({gold: "alarm_set", c1: "alarm_set", c2: "alarm_set"}, [10.0, 20.0, 30.0]),
        "bob": ({gold: "alarm_query", c1: "alarm_set", c2: "alarm_query"}, [40.0, 50.0, 60.0]),
    }
    for n, (who, (intents, seconds)) in enumerate(said.items()):
        server.clock.advance(n * timedelta(hours=1).total_seconds())
        with QueueClient(server.url, server.token(who)) as c:
            leases = c.lease(3).leases
            assert {x.clip.clip_id for x in leases} == {gold, c1, c2}
            for lease, spent in zip(leases, seconds, strict=True):
                body = annotation(
                    lease,
                    intent=intents[lease.clip.clip_id],
                    timings=Timings(active_seconds=spent),
                )
                c.submit(body, key())
                server.clock.advance(10)

    app = SuperviseApp(services_for(server, server.token("sue", "supervisor"), monkeypatch))
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await _quality(pilot)
        status = str(screen.query_one("#quality-status", Static).render())
        # 6 annotations by 2 people; 2 ordinary clips annotated twice (gold is not agreement);
        # intents matched on c1 and not on c2: 2 clips, values {set, set, set, query}.
        assert "6 annotations · 2 people · 2 clips K≥2" in status
        # alpha: n = 4 values (3 set, 1 query), one disagreeing clip (o = 2):
        # 1 - (n - 1) · 2 / (n² - 3² - 1²) = 1 - 3 · 2 / 6 = 0
        assert "intent α 0.00" in status
        people = _text(screen.query_one("#people", Static))
        rows = {x.split()[0]: x.split() for x in people.splitlines() if x.strip()}
        alice, bob = rows["alice"], rows["bob"]
        # alice: 3 clips in 60 s → 180/h, median 20 s, gold right, agreed on 1 of 2 shared.
        assert alice == ["alice", "3", "180.0", "20.0", "1", "100", "%", "0.00",
                                 "50", "%", "0.00"]  # fmt: skip
        # bob: 3 clips in 150 s → 72/h, median 50 s, gold intent wrong.
        assert bob == ["bob", "3", "72.0", "50.0", "1", "0", "%", "0.00", "50", "%",
                               "0.00"]  # fmt: skip
        locales = _text(screen.query_one("#locales", Static))
        # en-US: the 4 ordinary annotations, 2 clips, both K≥2, c2 disagrees.
        assert ["en-US", "4", "2", "2", "50", "%"] in [x.split() for x in locales.splitlines()]
        intents = _text(screen.query_one("#intents", Static))
        rows = {x.split()[0]: x.split() for x in intents.splitlines()[1:] if x.strip()}
        assert rows["alarm_set"] == ["alarm_set", "3", "2", "2", "50", "%"]
        assert rows["alarm_query"] == ["alarm_query", "1", "1", "1", "100", "%"]
        # The shift: 3 annotations at 09:00 (gold right), 3 at 10:00 (gold wrong), the last two
        # of the twelve hours.
        done, accuracy = (s.data for s in screen.query(Sparkline))
        assert list(done) == [0.0] * 10 + [3.0, 3.0]
        assert list(accuracy) == [0.0] * 10 + [100.0, 0.0]
        labels = [str(w.render()) for w in screen.query("ShiftSparklines Label")]
        assert "23:00 → 10:00 UTC, one bar an hour" in labels[0]
        assert "3 this hour · 6 in all" in labels
        assert "0 % last · 50 % of 2" in labels
        await pilot.press("y")  # the same key goes back
        await until(pilot, lambda: not isinstance(app.screen, QualityScreen), "the list")


def test_the_quality_key_is_in_help_and_the_palette() -> None:
    ours = {a.id: a for a in actions_for("supervise")}
    assert ours["console.quality"].show and ours["console.quality"].action == "quality"


class _WithReport(FakeSupervisorClient):
    def quality_report(self) -> QualityReport:
        start = 1767600000.0  # 2026-01-05 08:00 UTC
        return QualityReport.model_validate(
            {
                "people": [
                    {"annotator": f"ann{i}", "clips": 90 + 7 * i, "clips_per_hour": 110.0 + i,
                     "median_seconds": 21.5 + i, "shared_clips": 40 + i,
                     "gold": {"clips": 5, "wer": 0.05 * i, "intent_accuracy": 1 - 0.1 * i},
                     "wer_with_others": 0.08 + 0.01 * i, "intent_agreement": 0.9 - 0.05 * i}
                    for i in range(4)
                ],
                "locales": [
                    {"key": "en-US", "annotations": 300, "clips": 160, "multi_clips": 140,
                     "disagreed": 21},
                    {"key": "en-GB", "annotations": 80, "clips": 42, "multi_clips": 38,
                     "disagreed": 9},
                ],
                "intents": [
                    {"key": k, "annotations": n, "clips": n // 2, "multi_clips": n // 2 - 2,
                     "disagreed": d}
                    for k, n, d in (("alarm_set", 120, 6), ("play_music", 90, 11),
                                    ("weather_query", 60, 2))
                ],
                "overall": {"clips": 178, "mean_pair_wer": 0.093,
                            "intent_alpha": {"value": 0.81, "units": 178}},
                "series": [
                    {"start": start + 3600 * h, "annotations": a, "gold": g, "gold_correct": r}
                    for h, (a, g, r) in enumerate(
                        [(0, 0, 0)] * 4 + [(40, 2, 2), (96, 5, 4), (120, 6, 6), (88, 4, 3),
                                           (30, 0, 0), (110, 6, 5), (124, 7, 7), (12, 1, 1)]
                    )
                ],
            }
        )  # fmt: skip


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "200x60"])
def test_quality_view_snapshot(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app, _ = make_console(tmp_path)
    app.services.client_factory = _WithReport(default_rows())  # type: ignore[assignment]

    async def run_before(pilot: Pilot[Any]) -> None:
        await _quality(pilot)
        await pilot.pause(0.1)
        await freeze_moving_parts(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
