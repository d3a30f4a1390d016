"""IntentPicker driven by real key presses: filter, move, pick, recent digits."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from api.models import IntentDef
from tests.widgets.snapshot_apps.hosts import RECENT, TAXONOMY, IntentPickerApp
from widgets import IntentPicker
from widgets.intent_picker import rank_intents

SIZE = (80, 24)


def test_rank_puts_the_closest_id_first_and_marks_matched_characters() -> None:
    ids = [i.id for i in TAXONOMY.intents]
    ranked = rank_intents("lightoff", ids)
    assert ranked[0][0] == "iot_hue_lightoff"
    intent_id, label = rank_intents("weather", ids)[0]
    assert intent_id == "weather_query"
    styled = {i for span in label.spans for i in range(span.start, span.end)}
    assert styled == set(range(len("weather")))
    # Blanks are ignored, so people can type words.
    assert rank_intents("light off", ids)[0][0] == "iot_hue_lightoff"
    assert rank_intents("zzzz", ids) == []
    assert [i for i, _ in rank_intents("", ids)] == ids


async def test_typing_filters_and_enter_picks_the_best_match() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.press(*"lightoff")
        assert picker.filter_text == "lightoff"
        assert picker.highlighted == "iot_hue_lightoff"
        await pilot.press("enter")
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)] == ["iot_hue_lightoff"]
        assert picker.value == "iot_hue_lightoff"
        assert "intent: iot_hue_lightoff" in str(picker.query_one(".intent-picker--value").render())
        # The filter is emptied for the next clip, and focus never left the Input.
        assert picker.query_one(Input).value == ""
        assert isinstance(app.focused, Input)


async def test_arrows_move_the_list_while_typing_continues() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.press(*"alarm")
        first = picker.highlighted
        await pilot.press("down")
        second = picker.highlighted
        assert first is not None and second is not None and first != second
        assert isinstance(app.focused, Input)
        await pilot.press("up", "down", "enter")
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)] == [second]


async def test_digit_picks_recent_intent_and_types_nothing() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.press("2")
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)] == [RECENT[1]]
        assert picker.value == RECENT[1]
        assert picker.query_one(Input).value == ""
        # Default taxonomy ids have no digits, so digits pick even while filtering.
        await pilot.press(*"wea", "1")
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)][-1] == RECENT[0]
        assert picker.query_one(Input).value == "wea"
        # No recent intent behind this number: nothing is picked.
        await pilot.press("9")
        await pilot.pause()
        assert len(app.of_type(IntentPicker.Picked)) == 2


async def test_unfiltered_list_starts_with_numbered_recent_intents() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.pause()
        assert picker.highlighted == RECENT[0]
        assert picker.remember("alarm_set") == [
            "alarm_set",
            *[r for r in RECENT if r != "alarm_set"],
        ]
        assert picker.highlighted == "alarm_set"


async def test_digits_type_when_an_intent_id_contains_one() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        intents = [*TAXONOMY.intents, IntentDef(id="call_911", scenario="call")]
        picker.set_intents(intents)
        await pilot.press(*"call", "9")
        await pilot.pause()
        assert picker.query_one(Input).value == "call9"
        assert picker.highlighted == "call_911"
        assert app.of_type(IntentPicker.Picked) == []


async def test_pick_reset_and_unknown_intent() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        picker.pick("alarm_set")
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)] == ["alarm_set"]
        picker.reset()
        assert picker.value is None
        with pytest.raises(ValueError, match="unknown intent"):
            picker.pick("not_an_intent")
