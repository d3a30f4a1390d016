"""The review contract (issue 12): what a reviewer is shown and sends back. Shared by the server
(`api.server.quality_routes`) and `annotator review`.

A review item names people (a reviewer is staff and decides between them) but never a customer
identifier: no source name, no metadata, the clip id is the opaque one annotators see.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models import MAX_FLAGS, Note, OpaqueId, TaxonomyId, Transcript, _In, _Out

MAX_REVIEW_LIST = 200


class ReviewAnnotation(_Out):
    annotation_id: OpaqueId
    annotator: str
    transcript: str
    intent: str
    flags: list[str]
    note: str | None = None


class ReviewItem(_Out):
    clip_id: OpaqueId
    locale: str
    duration_s: float
    #: Why the annotations disagree: any of "intent", "flags", "transcript".
    reasons: list[str]
    annotations: list[ReviewAnnotation]


class ReviewList(_Out):
    items: list[ReviewItem]


class FinalIn(_In):
    """A reviewer's final for a clip: one annotation picked as it is, or an edited one."""

    transcript: Transcript
    intent: TaxonomyId
    flags: list[TaxonomyId] = Field(default_factory=list, max_length=MAX_FLAGS)
    note: Note | None = None


class Final(_Out):
    clip_id: OpaqueId
    transcript: str
    intent: str
    flags: list[str]
    decided_by: str
    from_annotations: list[str]
    decided_at: datetime
