"""A stored annotation body that today's rules refuse is still read (and sent, so the server's
422 lists it); one of the wrong shape raises, so sync rejects that row alone as malformed."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from annotator.store.models import parse_annotation
from api.models import AnnotationIn

GOOD = {"lease_id": "lease_0123456789", "fence": 1, "transcript": "set a timer", "intent": "timer"}


def test_a_body_an_older_annotator_allowed_is_still_read() -> None:
    body = {**GOOD, "transcript": "ok \x1b]0;title\x07 then"}
    with pytest.raises(ValidationError, match="unsafe_character"):
        AnnotationIn.model_validate_json(json.dumps(body))  # today's rule refuses it
    annotation = parse_annotation(json.dumps(body))
    assert annotation.transcript == body["transcript"] and annotation.intent == "timer"


@pytest.mark.parametrize(
    "damage",
    [{"intent": 5}, {"flags": "not a list"}, {"fence": "one"}, {"transcript": None}],
    ids=["intent-int", "flags-str", "fence-str", "transcript-null"],
)
def test_a_body_of_the_wrong_shape_raises(damage: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_annotation(json.dumps({**GOOD, **damage}))


def test_a_body_missing_a_field_or_not_json_raises() -> None:
    with pytest.raises(ValidationError):
        parse_annotation(json.dumps({k: v for k, v in GOOD.items() if k != "intent"}))
    with pytest.raises(ValidationError):
        parse_annotation("{not json")
