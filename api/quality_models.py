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


# ---------------------------------------------------------------- the quality report, as read
# `GET /v1/quality/report` is `api.server.quality_rules.Report` dumped as JSON; these read the
# parts the supervisor console shows (unknown fields are ignored, so the report can grow).


class QualityEstimate(_Out):
    value: float | None = None
    units: int = 0
    low: float | None = None
    high: float | None = None


class QualityGold(_Out):
    clips: int = 0
    wer: float | None = None
    intent_accuracy: float | None = None


class QualityPerson(_Out):
    annotator: str
    clips: int
    clips_per_hour: float | None = None
    median_seconds: float | None = None
    gold: QualityGold = QualityGold()
    shared_clips: int = 0
    wer_with_others: float | None = None
    intent_agreement: float | None = None


class QualityVolume(_Out):
    key: str
    annotations: int
    clips: int
    multi_clips: int
    disagreed: int

    @property
    def disagreement(self) -> float | None:
        return self.disagreed / self.multi_clips if self.multi_clips else None


class QualityAgreement(_Out):
    clips: int = 0
    mean_pair_wer: float | None = None
    intent_alpha: QualityEstimate = QualityEstimate()
    flag_alpha: dict[str, QualityEstimate] = Field(default_factory=dict)


class QualityPair(_Out):
    a: str
    b: str
    agreement: QualityAgreement


class QualityHour(_Out):
    start: float
    annotations: int
    gold: int
    gold_correct: int

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold if self.gold else None


class QualityReport(_Out):
    people: list[QualityPerson]
    locales: list[QualityVolume]
    intents: list[QualityVolume]
    overall: QualityAgreement
    pairs: list[QualityPair] = Field(default_factory=list)
    series: list[QualityHour] = Field(default_factory=list)
