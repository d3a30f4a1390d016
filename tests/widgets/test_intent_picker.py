"""IntentPicker driven by real key presses: filter (ids and meaning), move, pick, fixed digits."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList

from api.models import IntentDef
from tests.widgets.snapshot_apps.hosts import RECENT, TAXONOMY, IntentPickerApp
from widgets import IntentPicker
from widgets.intent_picker import rank_intents

SIZE = (80, 24)


def test_rank_puts_the_closest_id_first_and_marks_matched_characters() -> None:
    ids = [i.id for i in TAXONOMY.intents]
    ranked = rank_intents("lightoff", ids)
    assert ranked[0].intent_id == "iot_hue_lightoff"
    hit = rank_intents("weather", ids)[0]
    assert hit.intent_id == "weather_query"
    styled = {i for span in hit.label.spans for i in range(span.start, span.end)}
    assert styled == set(range(len("weather")))
    # Blanks are ignored, so people can type words.
    assert rank_intents("light off", ids)[0].intent_id == "iot_hue_lightoff"
    assert rank_intents("zzzz", ids) == []
    assert [h.intent_id for h in rank_intents("", ids)] == ids


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


async def test_digit_picks_its_fixed_intent_and_types_nothing() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.press("5")  # 4–9: the shift's most used
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)] == [RECENT[1]]
        assert picker.value == RECENT[1]
        assert picker.query_one(Input).value == ""
        # Default taxonomy ids have no digits, so digits pick even while filtering.
        await pilot.press(*"wea", "4")
        await pilot.pause()
        assert [m.intent_id for m in app.of_type(IntentPicker.Picked)][-1] == RECENT[0]
        assert picker.query_one(Input).value == "wea"
        # Nothing behind this number (no suggestion for the clip, no 9th usual): nothing picked.
        await pilot.press("1", "9")
        await pilot.pause()
        assert len(app.of_type(IntentPicker.Picked)) == 2


async def test_unfiltered_list_starts_with_the_numbered_intents() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.pause()
        assert picker.highlighted == RECENT[0]
        picker.set_suggestions(["play_radio", "weather_query"])
        assert picker.highlighted == "play_radio"
        prompts = [str(o.prompt) for o in picker.query_one(OptionList).options]
        assert prompts[0].startswith("1 play_radio")
        assert prompts[1].startswith("2 weather_query")
        # A suggestion that is also a usual intent keeps its 4–9 digit too: nothing shifts.
        assert prompts[2].startswith("4 weather_query")
        assert prompts[3].startswith("5 iot_hue_lightoff")
        # Then "none of these", then the taxonomy's order.
        assert prompts[6].startswith("  not_device_directed")
        assert prompts[7].startswith("  no_speech")


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
