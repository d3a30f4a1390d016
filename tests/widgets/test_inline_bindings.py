"""Bound editing keys act where they were typed, even when keys arrive faster than the widget
handles them (Textualize/textual#6605): keys are posted to the App all at once, as a burst read
from the terminal would be."""

from __future__ import annotations

from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from tests.widgets.snapshot_apps.hosts import FlagPanelApp, IntentPickerApp, TranscriptApp
from widgets import FlagPanel, IntentPicker, TranscriptField

SIZE = (100, 30)

#: b, a, Backspace, c, Left, Left, x, End, Delete at the end (a no-op): "xbc". Without the fix
#: the bound keys land after the characters typed behind them ("ba" and worse).
#: (key, character); events are built afresh per test (a handled event is marked as such).
BURST = [
    ("b", "b"),
    ("a", "a"),
    ("backspace", None),
    ("c", "c"),
    ("left", None),
    ("left", None),
    ("x", "x"),
    ("end", None),
    ("delete", None),
]


def keys(spec: list[tuple[str, str | None]]) -> list[events.Key]:
    return [events.Key(key, character) for key, character in spec]


async def burst(app: App[None], pilot: Pilot[None], keys: list[events.Key]) -> None:
    """Post every key before the App handles the first, then let it catch up."""
    for key in keys:
        app.post_message(key)
    for _ in range(5):
        await pilot.pause()


async def test_transcript_editor_applies_a_burst_in_order() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one(TranscriptField)
        await burst(app, pilot, keys(BURST))
        await pilot.pause()
        assert field.text == "xbc"


async def test_intent_filter_applies_a_burst_in_order() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await burst(app, pilot, keys(BURST))
        await pilot.pause()
        assert picker.query_one(Input).value == "xbc"


async def test_note_applies_a_burst_in_order() -> None:
    app = FlagPanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(FlagPanel)
        panel.focus_note()
        await pilot.pause()
        await burst(app, pilot, keys(BURST))
        await pilot.pause()
        assert panel.note == "xbc"


async def test_down_then_enter_in_a_burst_picks_what_was_highlighted_when_enter_was_typed() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        # "alarm" ranks alarm_query, alarm_remove, alarm_set; Down twice, Enter, then "w".
        typed = [(ch, ch) for ch in "alarm"]
        typed += [("down", None), ("down", None), ("enter", "\r"), ("w", "w")]
        await burst(app, pilot, keys(typed))
        await pilot.pause()
        assert picker.value == "alarm_set"
        # The key typed after Enter is the start of a new filter, not lost to the clearing.
        assert picker.query_one(Input).value == "w"
