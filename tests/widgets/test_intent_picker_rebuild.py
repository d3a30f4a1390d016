"""IntentPicker redraws its list at most once per turn of the message loop, and only on change.

A clip change asks three times (value cleared, filter cleared, recent intents reordered) and every
keystroke once; each full rebuild lays out 62 prompts, which used to cost milliseconds on the path
from the submit key to the next clip's sound.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import OptionList

from tests.widgets.snapshot_apps.hosts import RECENT, IntentPickerApp
from widgets import IntentPicker

SIZE = (80, 24)


def _count_set_options(picker: IntentPicker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    option_list = picker.query_one(OptionList)
    calls: list[int] = []
    original = option_list.set_options

    def counting(options: Any) -> OptionList:
        calls.append(1)
        return original(options)

    monkeypatch.setattr(option_list, "set_options", counting)
    return calls


def _prompts(picker: IntentPicker) -> list[str]:
    return [str(option.prompt) for option in picker.query_one(OptionList).options]


async def test_a_clip_change_rebuilds_the_list_once(monkeypatch: pytest.MonkeyPatch) -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.press(*"alarm_set", "enter")
        await pilot.pause()
        assert picker.value == "alarm_set"
        calls = _count_set_options(picker, monkeypatch)
        # What the annotate screen does between two clips.
        picker.reset()
        picker.set_suggestions(["alarm_set"])
        await pilot.pause()
        assert len(calls) == 1
        assert picker.highlighted == "alarm_set"
        assert all("✓" not in prompt for prompt in _prompts(picker))
        # Nothing that shows changed: no rebuild at all.
        picker.reset()
        picker.set_suggestions(["alarm_set"])
        await pilot.pause()
        assert len(calls) == 1


async def test_reads_see_the_latest_state_before_the_deferred_rebuild() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.pause()
        picker.set_frequent(["play_music", *RECENT])
        # No pause: `highlighted` (what Enter picks) must not lag behind.
        assert picker.highlighted == "play_music"
        picker.value = "play_music"
        assert picker.highlighted == "play_music"
        assert _prompts(picker)[0].startswith("4 play_music ✓")


async def test_cached_unfiltered_prompts_follow_value_and_numbers() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.pause()
        first = _prompts(picker)
        picker.value = RECENT[1]
        await pilot.pause()
        assert _prompts(picker)[1].startswith(f"5 {RECENT[1]} ✓  ")  # then its description
        picker.value = None
        await pilot.pause()
        assert _prompts(picker) == first
        await pilot.press(*"weather")
        assert picker.highlighted == "weather_query"
        await pilot.press(*["backspace"] * len("weather"))
        await pilot.pause()
        assert _prompts(picker) == first
