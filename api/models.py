"""The queue API contract, shared by the annotator's client and the reference server.

Every model an annotator can see is closed (`extra="forbid"` on input, an explicit field list on
output): no customer, account or device identifier exists anywhere in this module, and clip ids are
random and opaque. Bounds live here so that both sides reject the same things.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from api.text_safety import check_text

API_VERSION = "v1"

#: The most clips one lease request may take (prefetch and offline checkout page through this).
MAX_LEASE_COUNT = 50
#: Server-side cap on a lease's lifetime; offline checkout asks for up to this.
MAX_TTL_SECONDS = 8 * 3600
MIN_TTL_SECONDS = 30
MAX_TRANSCRIPT_CHARS = 5_000
MAX_NOTE_CHARS = 2_000
MAX_FLAGS = 16
MAX_BATCH_ITEMS = 500
#: Every integer in the contract has an upper bound (a 30-digit number is a 422, not an overflow
#: in storage). A fence grows by one per lease of a clip: 2**31 - 1 fits every SQL integer type.
MAX_FENCE = 2**31 - 1
MAX_DISPLAY_NAME_CHARS = 64


def _safe_text(value: str) -> str:
    problem = check_text(value)
    if problem is not None:
        # The error's loc names the field; the message names the character and where.
        raise PydanticCustomError("unsafe_character", problem)
    return value


#: Text a person typed that someone else will read: no control, bidi or zero-width characters.
SafeText = AfterValidator(_safe_text)
#: Idempotency keys are client-made (UUID4 hex or similar); bounded so they can be indexed.
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
]
OpaqueId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]
TaxonomyId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Locale = Annotated[str, StringConstraints(min_length=2, max_length=35, pattern=r"^[A-Za-z0-9-]+$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class _In(BaseModel):
    """Request bodies: unknown fields are an error, so a typo never silently drops data."""

    # defer_build as for `_Out` (the client serialises a few request models, after its first
    # clip); the server undoes it at import: `build_request_models`.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=False,
        frozen=True,
        allow_inf_nan=False,
        defer_build=True,
    )


def build_request_models() -> None:
    """Build every request model now and stop deferring them (and those defined later).

    For the server, before its routes exist: FastAPI builds each body field's adapter at route
    registration while ignoring pydantic's UnsupportedFieldAttributeWarning (a false positive
    for its fields); a deferred model would make that adapter build later, outside the filter,
    and the warning reach the log at /openapi.json and at each route's first request."""
    pending: list[type[BaseModel]] = [_In]
    while pending:
        model = pending.pop()
        model.model_config["defer_build"] = False
        model.model_rebuild()
        pending.extend(model.__subclasses__())


class _Out(BaseModel):
    """Response bodies: the client ignores fields it does not know, so servers can grow."""

    # defer_build: each validator is built on first use, not at import (the TUI's cold start
    # imports every model and uses a few; tests/test_import_cost.py).
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False, defer_build=True)


class Role(StrEnum):
    ANNOTATOR = "annotator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    #: Decides clips whose annotations disagree (`annotator review`); supervisors and admins
    #: may review too.
    REVIEWER = "reviewer"


# ---------------------------------------------------------------- errors


class ErrorBody(_Out):
    """Every 4xx/5xx from the server has this shape.

    `reason` is machine-readable and stable (e.g. `completed_by_other`, `stale_fence`,
    `idempotency_mismatch`, `validation`); `field` names the offending field where there is one.
    """

    reason: str
    message: str
    field: str | None = None


# ---------------------------------------------------------------- health & taxonomy


class Health(_Out):
    status: Literal["ok"] = "ok"
    version: str
    time: datetime


class IntentDef(_Out):
    id: TaxonomyId
    scenario: str
    description: str = ""
    #: Typical phrasings: searched by the intent picker and scored against machine drafts.
    examples: list[str] = Field(default_factory=list)


class FlagDef(_Out):
    id: TaxonomyId
    definition: str
    #: An escalation flag requires a note and puts the clip on the supervisors' list at once.
    escalation: bool = False


class TagDef(_Out):
    #: Written in a transcript with its brackets, e.g. ``[noise]``.
    tag: Annotated[str, StringConstraints(pattern=r"^\[[a-z_]+\]$")]
    definition: str


class OutcomeDef(_Out):
    """A way an escalation can be resolved (from the deployment's taxonomy file)."""

    id: TaxonomyId
    definition: str


def default_outcomes() -> list[OutcomeDef]:
    return [
        OutcomeDef(id="no_action_needed", definition="Heard it; nothing needs to be done."),
        OutcomeDef(id="referred_per_policy", definition="Referred on as the policy says."),
        OutcomeDef(id="false_alarm", definition="The flag was raised in error."),
        OutcomeDef(id="needs_legal_review", definition="Passed to legal for review."),
    ]


class Taxonomy(_Out):
    version: str
    intents: list[IntentDef]
    flags: list[FlagDef]
    tags: list[TagDef]
    #: Intents under which an empty transcript is legitimate.
    empty_transcript_intents: list[TaxonomyId] = Field(default_factory=lambda: ["no_speech"])
    #: Flags under which an empty transcript is legitimate.
    empty_transcript_flags: list[TaxonomyId] = Field(default_factory=lambda: ["unintelligible"])
    #: How a supervisor may resolve an escalation (`ResolveRequest.outcome`).
    outcomes: list[OutcomeDef] = Field(default_factory=default_outcomes, min_length=1)


# ---------------------------------------------------------------- leases


class LeaseRequest(_In):
    count: int = Field(default=1, ge=1, le=MAX_LEASE_COUNT)
    ttl_seconds: int | None = Field(default=None, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)


#: A machine draft's word below this confidence is marked for the annotator's eye.
LOW_CONFIDENCE = 0.5


class AsrWord(_Out):
    """One word of a machine draft with the recogniser's confidence in it (0–1)."""

    word: str
    confidence: float = Field(ge=0, le=1)


class Clip(_Out):
    """Everything an annotator learns about a clip. Nothing here identifies a customer."""

    clip_id: OpaqueId
    duration_s: float = Field(ge=0)
    sample_rate: int = Field(gt=0, le=1_000_000)
    channels: int = Field(ge=1, le=8)
    locale: Locale
    sha256: Sha256Hex
    asr_hint: str | None = None
    #: Set when `asr_hint` is a machine draft: its words (joined by spaces they are the hint).
    asr_words: list[AsrWord] | None = None
    #: The server's best three intents for this clip, best first (from the draft).
    suggested_intents: list[TaxonomyId] = Field(default_factory=list, max_length=3)


class Lease(_Out):
    lease_id: OpaqueId
    #: Fencing token: grows every time the clip is leased; a submission with an older one is stale.
    fence: int = Field(ge=1, le=MAX_FENCE)
    expires_at: datetime
    clip: Clip


class LeaseList(_Out):
    leases: list[Lease]


class RenewRequest(_In):
    ttl_seconds: int | None = Field(default=None, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)


class ReleaseReason(StrEnum):
    SKIPPED = "skipped"
    BROKEN_AUDIO = "broken_audio"
    WRONG_LOCALE = "wrong_locale"
    CANNOT_JUDGE = "cannot_judge"
    UNUSED = "unused"  # prefetched but never shown (quit, go offline cancelled)
    OTHER = "other"


class ReleaseRequest(_In):
    reason: ReleaseReason
    detail: Annotated[str, SafeText] | None = Field(default=None, max_length=500)


class LeaseState(_Out):
    lease_id: OpaqueId
    fence: int = Field(ge=1, le=MAX_FENCE)
    expires_at: datetime
    released: bool = False


# ---------------------------------------------------------------- annotations


class Timings(_In):
    """How the annotator spent the clip, for throughput statistics (never for identity)."""

    shown_at: datetime | None = None
    submitted_at: datetime | None = None
    active_seconds: float | None = Field(default=None, ge=0, le=24 * 3600)
    plays: int | None = Field(default=None, ge=0, le=10_000)


Transcript = Annotated[str, StringConstraints(max_length=MAX_TRANSCRIPT_CHARS), SafeText]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS), SafeText]
#: A person's display name (token names): shown to supervisors, so one visible line.
DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_DISPLAY_NAME_CHARS, strip_whitespace=True),
    SafeText,
]


class AnnotationIn(_In):
    lease_id: OpaqueId
    fence: int = Field(ge=1, le=MAX_FENCE)
    transcript: Transcript
    intent: TaxonomyId
    flags: list[TaxonomyId] = Field(default_factory=list, max_length=MAX_FLAGS)
    note: Note | None = None
    timings: Timings | None = None


class AnnotationStatus(StrEnum):
    ACCEPTED = "accepted"
    LATE = "late"  # the lease had expired but nobody else completed the clip


class Receipt(_Out):
    annotation_id: OpaqueId
    clip_id: OpaqueId
    status: AnnotationStatus
    #: Until when its author may still amend it (undo in the client).
    amend_until: datetime | None = None


class BatchItem(_In):
    idempotency_key: IdempotencyKey
    annotation: AnnotationIn


class BatchRequest(_In):
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class BatchItemResult(_Out):
    idempotency_key: str
    #: The HTTP status the single endpoint would have answered for this item.
    status_code: int = Field(ge=100, le=599)
    receipt: Receipt | None = None
    error: ErrorBody | None = None


class BatchResponse(_Out):
    results: list[BatchItemResult]


class AnnotationPatch(_In):
    """An amendment by the annotation's author, within the amend window. Omitted fields stay."""

    transcript: Transcript | None = None
    intent: TaxonomyId | None = None
    flags: list[TaxonomyId] | None = Field(default=None, max_length=MAX_FLAGS)
    note: Note | None = None


class Annotation(_Out):
    annotation_id: OpaqueId
    clip_id: OpaqueId
    transcript: str
    intent: str
    flags: list[str]
    note: str | None = None
    status: AnnotationStatus
    created_at: datetime
    amended_at: datetime | None = None
    amend_until: datetime


# ---------------------------------------------------------------- stats, escalations, export


class Stats(_Out):
    today: int = Field(ge=0, le=2**53)
    clips_per_hour: float = Field(ge=0)
    median_seconds: float | None = None
    total: int = Field(default=0, ge=0, le=2**53)


class ExportRecord(_Out):
    """One line of the admin JSONL export."""

    annotation_id: str
    clip_id: str
    source_name: str | None = None  # the ingested file's name: admin-only, never sent to annotators
    locale: str
    annotator: str
    transcript: str
    intent: str
    flags: list[str]
    note: str | None = None
    status: AnnotationStatus
    created_at: datetime
    amended_at: datetime | None = None
    taxonomy_version: str
    #: Set when the server deleted the clip's audio under its retention policy: an export
    #: (or anything built on one) must not carry or fetch that audio.
    audio_deleted_at: datetime | None = None


# ---------------------------------------------------------------- the supervisors' procedure
# (issue 11) Escalations have a lifecycle `open → acknowledged → resolved` (and `reopen`); every
# transition and every play of the audio is an append-only audit event. The console
# (`annotator supervise`) long-polls the list; the admin view reads queue status, people and
# throughput. Transcripts and annotator names appear here: these routes are supervisor/admin only.

#: The longest a long-poll on GET /v1/escalations may wait for news.
MAX_ESCALATION_WAIT_S = 25
MAX_ESCALATIONS_PAGE = 1000


class EscalationState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EscalationKind(StrEnum):
    #: An annotation carried an escalation flag (distress, self_harm, ...).
    FLAG = "flag"
    #: An annotator skipped the clip with `ReleaseReason.CANNOT_JUDGE` (a supervisor's view needed).
    CANNOT_JUDGE = "cannot_judge"


class AuditAction(StrEnum):
    ACK = "ack"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    #: A supervisor fetched the clip's audio (no state change: from_state == to_state).
    PLAY = "play"


class ServiceLevel(_Out):
    """The escalation's deadlines (from `raised_at`, or from its latest reopen)."""

    ack_due_at: datetime
    resolve_due_at: datetime
    #: Not acknowledged (nor resolved) by `ack_due_at`.
    ack_overdue: bool
    #: Not resolved by `resolve_due_at`.
    resolve_overdue: bool


class EscalationSummary(_Out):
    """One row of the supervisors' list. The old `Escalation` fields keep their names
    (annotation_id, clip_id, flags, note, transcript, intent, annotator, created_at)."""

    escalation_id: OpaqueId
    kind: EscalationKind
    clip_id: OpaqueId
    #: None for a `cannot_judge` skip (nobody annotated the clip).
    annotation_id: OpaqueId | None = None
    flags: list[str] = Field(default_factory=list)
    #: 0 is the most severe (self_harm), then distress, other escalation flags, cannot_judge.
    severity: int = Field(ge=0, le=100)
    #: The annotator's note (flag) or skip detail (cannot_judge).
    note: str | None = None
    transcript: str | None = None
    intent: str | None = None
    #: Who raised it (an annotator's display name; never a customer's).
    annotator: str
    #: When it reached the server.
    created_at: datetime
    locale: str
    duration_s: float = Field(ge=0)
    state: EscalationState
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    outcome: str | None = None
    resolution_note: str | None = None
    sla: ServiceLevel
    #: ack_overdue or resolve_overdue: such rows sort first.
    overdue: bool


class ServiceLevelSettings(_Out):
    ack_seconds: int = Field(ge=1, le=2**31 - 1)
    resolve_seconds: int = Field(ge=1, le=2**31 - 1)


class EscalationPage(_Out):
    """GET /v1/escalations: the matching escalations, overdue first, then by severity, oldest
    first. `cursor` names the state of the whole list: pass it back with `wait=N` and the
    server answers as soon as anything changed (a new escalation, a transition, an amendment),
    or after N seconds with the same cursor."""

    escalations: list[EscalationSummary]
    cursor: Annotated[str, StringConstraints(max_length=128)]
    #: True when more escalations matched than `limit`.
    truncated: bool = False
    now: datetime
    service_levels: ServiceLevelSettings


class AuditEvent(_Out):
    """One append-only audit event: never edited, never deleted."""

    event_id: OpaqueId
    escalation_id: OpaqueId
    action: AuditAction
    actor: str
    at: datetime
    from_state: EscalationState
    to_state: EscalationState
    outcome: str | None = None
    note: str | None = None


class AmendmentRecord(_Out):
    """One earlier version of an annotation (its amend history)."""

    amended_at: datetime
    transcript: str
    intent: str
    flags: list[str]
    note: str | None = None


class EscalationDetail(_Out):
    escalation: EscalationSummary
    #: The annotation as it stands now (None for a cannot_judge skip).
    annotation: Annotation | None = None
    #: Earlier versions of the annotation, oldest first (empty when never amended).
    amendments: list[AmendmentRecord] = Field(default_factory=list)
    #: Every audit event of this escalation, oldest first.
    audit: list[AuditEvent] = Field(default_factory=list)


class AckRequest(_In):
    note: Note | None = None


RequiredNote = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NOTE_CHARS, pattern=r"\S"), SafeText
]


class ResolveRequest(_In):
    outcome: TaxonomyId
    #: Required: what was done and why.
    note: RequiredNote


class ReopenRequest(_In):
    note: Note | None = None


# ---------------------------------------------------------------- admin


class LocaleCounts(_Out):
    locale: str
    pending: int = Field(ge=0, le=2**53)
    leased: int = Field(ge=0, le=2**53)
    done: int = Field(ge=0, le=2**53)
    escalated: int = Field(ge=0, le=2**53)


class PersonLeases(_Out):
    annotator: str
    live_leases: int = Field(ge=0, le=2**53)


class QueueStatus(_Out):
    """Clips by state: `pending` needs work and nobody holds it, `leased` is held by a live
    lease, `done` has all its annotations; `escalated` clips have an escalation (any state)."""

    at: datetime
    pending: int = Field(ge=0, le=2**53)
    leased: int = Field(ge=0, le=2**53)
    done: int = Field(ge=0, le=2**53)
    escalated: int = Field(ge=0, le=2**53)
    #: Escalations not yet resolved.
    open_escalations: int = Field(ge=0, le=2**53)
    by_locale: list[LocaleCounts]
    leases_per_person: list[PersonLeases]


class TokenInfo(_Out):
    """A token's public facts (never the token, never its hash)."""

    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    #: Names this token to `POST /v1/admin/people/{person_id}/revoke` (derived from its hash
    #: one way: it gives away nothing of the token).
    token_id: OpaqueId | None = None
    expires_at: datetime | None = None
    #: live | expired | revoked (at the server's time of the answer).
    state: Literal["live", "expired", "revoked"] = "live"


class PersonInfo(_Out):
    name: str
    person_id: OpaqueId | None = None
    created_at: datetime | None = None
    #: The roles of the person's live tokens (all tokens' when none is live).
    roles: list[Role]
    live_tokens: int = Field(ge=0, le=2**53)
    tokens: list[TokenInfo]
    annotations: int = Field(ge=0, le=2**53)
    last_annotation_at: datetime | None = None
    live_leases: int = Field(ge=0, le=2**53)


class PeopleList(_Out):
    people: list[PersonInfo]


class RevokeRequest(_In):
    """Revoke one token of the person (`token_id`), or all their live tokens (no `token_id`)."""

    token_id: OpaqueId | None = None


class RevokeResult(_Out):
    #: Tokens this request revoked (0: they were revoked already, a retried request).
    revoked: int = Field(ge=0, le=2**53)
    person: PersonInfo


class PersonThroughput(_Out):
    annotator: str
    #: Annotations per hour, aligned with `Throughput.hours`.
    clips_per_hour: list[Annotated[int, Field(ge=0, le=2**53)]]
    total: int = Field(ge=0, le=2**53)


class Throughput(_Out):
    """Annotations per person and hour, from `since` (an hour start, UTC) for `len(hours)` h."""

    since: datetime
    #: The start of each hour bucket, oldest first.
    hours: list[datetime]
    people: list[PersonThroughput]
