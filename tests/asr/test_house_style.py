"""Drafts are written the way annotators write: the rules every engine's words go through."""

from __future__ import annotations

import math

import pytest

from api.server.asr.engine import make_draft


@pytest.mark.parametrize(
    ("heard", "written"),
    [
        ("Set an alarm for 7:30am.", "set an alarm for seven thirty a m"),
        ("Wake me at 6am, please!", "wake me at six a m please"),
        ("I need 100 dollars", "i need one hundred dollars"),
        ("at 12:05", "at twelve oh five"),
        ("What's 42?", "what's forty two"),
        ("It’s “fine” - really…", "it's fine really"),
        ("call 07700 900123", "call 07700 900123"),  # a phone number stays as heard
        ("in 2024", "in 2024"),  # a year reads two ways
        ("it is 3.5 degrees", "it is 3.5 degrees"),
        ("25:99", "25:99"),  # not a time
        ("What is 15% of 80?", "what is fifteen percent of eighty"),
        ("a 100 % sure", "a one hundred percent sure"),
    ],
)
def test_house_style(heard: str, written: str) -> None:
    assert make_draft([(heard, 0.9)]).text == written


def test_words_keep_their_confidence_and_join_to_the_text() -> None:
    draft = make_draft(
        [(" Turn", 0.25), (" 7:30.", 0.5), (" -", 0.9), (" off", math.nan), ("x", 7)]
    )
    assert draft.text == "turn seven thirty off x"
    assert [(w.word, w.confidence) for w in draft.words] == [
        ("turn", 0.25),
        ("seven", 0.5),
        ("thirty", 0.5),
        ("off", 0.0),
        ("x", 1.0),
    ]
