"""Snapshot tests (pytest-textual-snapshot): update with `pytest tests/widgets --snapshot-update`,
then look at the SVGs in tests/widgets/__snapshots__/ before committing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from tests.fixtures.snapshots import freeze_moving_parts
from tests.widgets.snapshot_apps.hosts import (
    FlagPanelApp,
    IntentPickerApp,
    PlayerBarApp,
    TranscriptApp,
)
from tests.widgets.snapshot_apps.layout import LayoutApp
from widgets import FlagPanel

SnapCompare = Callable[..., bool]
freeze = freeze_moving_parts  # every snapshot: nothing on screen may move with time


def test_player_bar(snap_compare: SnapCompare) -> None:
    assert snap_compare(PlayerBarApp(), run_before=freeze, terminal_size=(80, 24))


def test_intent_picker_filtered(snap_compare: SnapCompare) -> None:
    app = IntentPickerApp()
    assert snap_compare(app, run_before=freeze, press=[*"volume"], terminal_size=(80, 24))


def test_flag_panel_with_escalation_note(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        panel = pilot.app.query_one(FlagPanel)
        panel.toggle("pii")
        panel.toggle("distress")
        panel.focus_note()
        await pilot.press(*"caller says someone broke in")
        await freeze(pilot)

    assert snap_compare(FlagPanelApp(), run_before=run_before, terminal_size=(80, 24))


def test_transcript_with_lint_errors(snap_compare: SnapCompare) -> None:
    app = TranscriptApp("turn the [nois] lights off ]please")
    assert snap_compare(app, run_before=freeze, terminal_size=(80, 24))


def test_all_widgets_at_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(LayoutApp(), run_before=freeze, terminal_size=(80, 24))
