"""Machine-draft marks follow the words as the text changes; the no-unseen-submit rule."""

from __future__ import annotations

from annotator.workbench.draft_review import END_SLACK_S, DraftReview
from api.models import LOW_CONFIDENCE
from widgets.machine_draft import unsure_spans

WORDS = [("turn", 0.9), ("of", 0.2), ("the", 0.95), ("kitchen", 0.4), ("lights", 0.8)]


def _marked(text: str) -> list[str]:
    return [text[a:b] for a, b in unsure_spans(WORDS, text, LOW_CONFIDENCE)]


def test_unsure_words_follow_edits() -> None:
    assert _marked("turn of the kitchen lights") == ["of", "kitchen"]
    assert _marked("please turn of the kitchen lights") == ["of", "kitchen"]  # shifted
    assert _marked("turn off the kitchen lights") == ["kitchen"]  # retyped: no longer marked
    assert _marked("turn off the lights") == []
    assert _marked("") == []
    assert unsure_spans([], "anything", LOW_CONFIDENCE) == []


def test_an_unchanged_draft_needs_the_clip_heard_to_the_end_without_skipping() -> None:
    review = DraftReview("turn of the lights", duration_s=3.0, playable=True, replay_key="f4")
    assert review.refusal("turn of the lights") is not None
    assert "f4 replays" in (review.refusal("turn of the lights") or "")
    assert review.refusal("turn off the lights") is None  # edited: read
    # A jump forward (seek) leaves the rest unheard.
    for position in (0.0, 0.1, 0.2, 2.9):
        review.listened(position)
    assert not review.heard
    # Played through from where it was heard.
    position = 0.2
    while position < 3.0:
        position += 0.1
        review.listened(min(position, 3.0))
    assert review.heard and review.heard_until >= 3.0 - END_SLACK_S
    assert review.refusal("turn of the lights") is None


def test_a_draft_of_unplayable_audio_must_be_edited() -> None:
    review = DraftReview("hello", duration_s=2.0, playable=False, clear_key="shift+f11")
    for position in (0.0, 1.0, 2.0):
        review.listened(position)
    assert not review.heard
    refusal = review.refusal("hello") or ""
    assert "cannot be played" in refusal and "shift+f11 clears" in refusal
    assert review.refusal("") is None
