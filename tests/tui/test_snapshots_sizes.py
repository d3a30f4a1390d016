"""Snapshots at the smallest supported terminal (80×24) and a large one (200×60) for the states
issue 14 and 16 changed: the resting screen (transcript labelled, no stray scrollbar glyph, no
pace at clip 0, the transcript box capped so the intents get a tall terminal's space), the help
overlay (columns apart), the flags worked by keys, and keys held while waiting for a clip with
the link reconnecting. Same fixtures as tests/tui/test_snapshots.py (`freeze_moving_parts`).

Update with `pytest tests/tui/test_snapshots_sizes.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annotator.screens.messages import ConnectivityChanged
from annotator.workbench.connectivity import ConnectivityState, Link
from tests.tui.fakes import make_app, ready_clip
from tests.tui.helpers import type_text
from tests.tui.test_snapshots import _home, screen_of, settle

__all__ = ["_home"]  # the fixture

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 60), id="200x60")]


@pytest.mark.parametrize("size", SIZES)
def test_resting(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(tmp_path, [ready_clip(1, hint="set an alarm for seven"), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(tmp_path, [ready_clip(1)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_flags_by_keys(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+g", "down", "space", "down", "down", "down", "down", "down")
        await pilot.press("space")  # minor and distress on, the highlight on distress
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_keys_held_while_waiting(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(tmp_path, [ready_clip(1)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+l")
        await type_text(pilot, "alarmset")
        await pilot.press("enter", "ctrl+t")
        await type_text(pilot, "hi")
        await pilot.press("ctrl+s")  # nothing left: waiting
        await settle(pilot)
        await type_text(pilot, "next one")
        screen = screen_of(pilot)
        screen.post_message(ConnectivityChanged(ConnectivityState(Link.RECONNECTING, "refused")))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
