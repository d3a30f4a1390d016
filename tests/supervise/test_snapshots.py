"""Snapshots of the console at the smallest supported terminal (80×24) and a large one (200×60),
from fixed escalations (tests/supervise/fakes.py: fixed server clock, frozen monotonic clock,
a player whose playhead does not move) with every cursor frozen (`freeze_moving_parts`).

Update with `pytest tests/supervise/test_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annotator.supervise.screens.queue import QueueScreen
from annotator.supervise.screens.resolve import ResolveScreen
from tests.fixtures.snapshots import freeze_moving_parts
from tests.supervise.fakes import make_console
from tests.supervise.test_console_keys import loaded, until

SMALL, LARGE = (80, 24), (200, 60)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


async def settle(pilot: Pilot[Any]) -> None:
    screen = await loaded(pilot)
    selected = screen.table.selected
    await until(pilot, lambda: selected in screen._details, "the selected escalation's detail")
    await pilot.pause(0.1)
    await freeze_moving_parts(pilot)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "200x60"])
def test_escalations(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app, _ = make_console(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_resolve_dialog(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_console(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ResolveScreen), "the dialog")
        await pilot.press("2")
        await freeze_moving_parts(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_queue_view(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_console(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue view")
        status = app.screen.query_one("#queue-status")
        await until(pilot, lambda: "pending" in str(status.render()), "the queue status")
        await pilot.pause(0.1)
        await freeze_moving_parts(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)
