"""Finding an intent by what it means (issue 14 item 4): search, no-match, Esc, digits 1–3."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList

from api.taxonomy import TaxonomyIndex
from tests.widgets.snapshot_apps.hosts import TAXONOMY, IntentPickerApp
from widgets import IntentPicker
from widgets.intent_search import highlight, rank_intents

SIZE = (80, 24)


@pytest.mark.parametrize(
    ("query", "wanted", "within"),
    [
        ("remind", "calendar_set", 1),
        ("reminder", "calendar_set", 2),
        ("none", "no_speech", 2),
        ("none", "not_device_directed", 2),
        ("noise", "no_speech", 1),
        ("silence", "no_speech", 2),
        ("tv", "not_device_directed", 1),
        ("accident", "not_device_directed", 1),
        ("other", "not_device_directed", 2),
        ("wake me", "alarm_set", 1),
        ("umbrella", "weather_query", 1),
        ("alrmset", "alarm_set", 1),  # the id's fuzzy match still comes first
        ("light off", "iot_hue_lightoff", 1),
        # Ties on the meaning went to the taxonomy's order: Enter picked alarm_set for "time",
        # music_dislikeness for "music" and "play", alarm_query for "set alarm".
        ("time", "datetime_query", 2),
        ("music", "play_music", 1),
        ("play music", "play_music", 1),
        ("set alarm", "alarm_set", 1),
    ],
)
def test_intents_are_found_by_their_meaning(query: str, wanted: str, within: int) -> None:
    ranked = [hit.intent_id for hit in rank_intents(query, TAXONOMY.intents)]
    assert wanted in ranked[:within], (query, ranked[:5])


def test_play_finds_a_play_intent_first() -> None:
    assert rank_intents("play", TAXONOMY.intents)[0].intent_id.startswith("play_")


def test_a_meaning_hit_says_where_it_was_found() -> None:
    hit = rank_intents("remind", TAXONOMY.intents)[0]
    assert hit.because is not None
    text = str(hit.because)
    marked = {text[s.start : s.end] for s in hit.because.spans}
    assert "remind" in marked
    # Descriptions and examples are text, never markup (Matcher.highlight would parse it).
    assert str(highlight("[b]lights[/b] off", "lo")) == "[b]lights[/b] off"


def test_every_intent_has_a_description_and_examples() -> None:
    for intent in TAXONOMY.intents:
        assert intent.description and intent.description != intent.id.replace("_", " ")
        assert len(intent.examples) >= 4, intent.id


async def test_enter_with_no_match_says_so_and_esc_clears() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        await pilot.press(*"zqxj")
        assert picker.highlighted is None
        prompts = [str(o.prompt) for o in picker.query_one(OptionList).options]
        assert prompts == ["no intent matches 'zqxj' — Esc clears the filter"]
        await pilot.press("enter")
        await pilot.pause()
        assert app.of_type(IntentPicker.Picked) == []
        assert any("No intent matches 'zqxj'" in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        assert picker.query_one(Input).value == ""
        assert picker.highlighted is not None


async def test_suggestions_sit_on_1_to_3_and_a_missing_one_moves_nothing() -> None:
    app = IntentPickerApp()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(IntentPicker)
        before = {n: picker.digit_intent(n) for n in range(4, 10)}
        picker.set_suggestions(["play_radio"])  # one suggestion only
        assert picker.digit_intent(1) == "play_radio"
        assert picker.digit_intent(2) is None and picker.digit_intent(3) is None
        assert {n: picker.digit_intent(n) for n in range(4, 10)} == before
        await pilot.press("2")
        await pilot.pause()
        assert app.of_type(IntentPicker.Picked) == []
        await pilot.press("1")
        await pilot.pause()
        assert picker.value == "play_radio"


def test_unintelligible_implies_no_speech_and_the_server_rule_accepts_it() -> None:
    index = TaxonomyIndex(TAXONOMY)
    assert index.implied_intent(["pii", "unintelligible"]) == ("no_speech", "unintelligible")
    assert index.implied_intent(["pii"]) is None
    # What the client then submits is what the server's rule (the same function) accepts.
    assert (
        index.check_annotation(
            transcript="", intent="no_speech", flags=["unintelligible"], note=None
        )
        == []
    )
