"""FlagPanel: toggles post Changed, escalation flags reveal the required note."""

from __future__ import annotations

import pytest

from tests.widgets.snapshot_apps.hosts import FlagPanelApp
from widgets import FlagPanel
from widgets.flag_panel import NOTE_PLACEHOLDER

SIZE = (80, 24)


def _note_visible(panel: FlagPanel) -> bool:
    row = panel.query_one(".flag-panel--note-row")
    return row.display and row.region.height == 1


async def test_toggle_posts_changed_and_distress_reveals_the_note() -> None:
    app = FlagPanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(FlagPanel)
        await pilot.pause()
        assert not _note_visible(panel)

        panel.toggle("pii")
        await pilot.pause()
        assert app.of_type(FlagPanel.Changed)[-1].flags == frozenset({"pii"})
        assert not panel.note_required
        assert not _note_visible(panel)

        panel.toggle("distress")
        await pilot.pause()
        assert app.of_type(FlagPanel.Changed)[-1].flags == frozenset({"pii", "distress"})
        assert panel.note_required and panel.escalated == frozenset({"distress"})
        assert _note_visible(panel)
        assert "required" in NOTE_PLACEHOLDER and "supervisor" in NOTE_PLACEHOLDER

        panel.focus_note()
        await pilot.press(*"shouting")
        await pilot.pause()
        last = app.of_type(FlagPanel.Changed)[-1]
        assert (last.flags, last.note) == (frozenset({"pii", "distress"}), "shouting")
        assert panel.note == "shouting"

        # Switching the flag off hides the note but never loses what was typed.
        panel.toggle("distress")
        await pilot.pause()
        assert not _note_visible(panel)
        panel.toggle("distress")
        await pilot.pause()
        assert _note_visible(panel) and panel.note == "shouting"


async def test_rows_show_key_hints_and_marks() -> None:
    app = FlagPanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(FlagPanel)
        panel.toggle("self_harm")
        await pilot.pause()
        lines = panel.render_rows().plain.splitlines()
        assert len(lines) == 8
        assert lines[0].startswith("F1 ○ pii")
        assert lines[7].startswith("F8 ● self_harm")


async def test_reset_and_unknown_flag() -> None:
    app = FlagPanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(FlagPanel)
        panel.toggle("distress")
        await pilot.pause()
        before = len(app.of_type(FlagPanel.Changed))
        panel.note = "restored from a draft"
        await pilot.pause()
        assert len(app.of_type(FlagPanel.Changed)) == before
        panel.reset()
        await pilot.pause()
        assert panel.flags == frozenset() and panel.note == ""
        assert len(app.of_type(FlagPanel.Changed)) == before
        with pytest.raises(ValueError, match="unknown flag"):
            panel.toggle("nope")
