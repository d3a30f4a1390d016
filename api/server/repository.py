"""The storage interface the routes use, and nothing else: a PostgreSQL backend slots in here.

Every method that changes the queue is one atomic transaction in the backend, and refuses with
`api.server.errors.Rejection` (status + machine-readable reason) when the queue rules say no, so
the rules live next to the data they guard and hold across several server processes.

How the SQLite claim maps to PostgreSQL: SQLite serialises writers, so `claim` is a
`BEGIN IMMEDIATE` transaction that selects the first open, unleased clips and stamps a lease on
them before anyone else may write. On PostgreSQL the same method becomes

    SELECT ... FROM clips
     WHERE completed < needed AND (leased_until IS NULL OR leased_until <= now())
       AND NOT EXISTS (... this annotator's annotation or skip ...)
     ORDER BY seq LIMIT :count
     FOR UPDATE SKIP LOCKED

followed by the same UPDATE/INSERT in that transaction: concurrent claimers skip each other's
locked rows instead of waiting, so many stateless server processes can share one database.
`submit` and `amend` take `SELECT ... FOR UPDATE` on the lease and clip rows instead of
`BEGIN IMMEDIATE`; idempotency rests on the UNIQUE (annotator, idempotency_key) constraint in
both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from api.models import AnnotationStatus, ReleaseReason, Role
from api.server.errors import Rejection
from api.server.records import NewClip


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a bearer token belongs to. `name` is the annotator's identity everywhere."""

    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class ClipInfo:
    clip_id: str
    duration_s: float
    sample_rate: int
    channels: int
    locale: str
    sha256: str
    asr_hint: str | None
    #: The machine draft's (word, confidence) pairs; None when no engine drafted the clip.
    asr_words: tuple[tuple[str, float], ...] | None = None


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    lease_id: str
    fence: int
    expires_at: datetime
    clip: ClipInfo


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    lease_id: str
    fence: int
    expires_at: datetime
    released: bool


@dataclass(frozen=True, slots=True)
class StoredAudio:
    path: Path
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class DraftTarget:
    """A queued clip that has neither an ASR hint nor a machine draft (see `api.server.asr`)."""

    clip_id: str
    source_name: str | None
    duration_s: float
    audio: StoredAudio


@dataclass(frozen=True, slots=True)
class AnnotationContent:
    """What an annotator says about a clip, already checked against the taxonomy."""

    transcript: str
    intent: str
    flags: tuple[str, ...]
    note: str | None
    #: True when any flag is an escalation flag (decided by the caller, which holds the taxonomy).
    escalated: bool


@dataclass(frozen=True, slots=True)
class Submission:
    lease_id: str
    fence: int
    idempotency_key: str
    #: sha256 of the canonical request body: the same key with another body is refused.
    request_hash: str
    #: The canonical request body, kept for audit.
    body_json: str
    content: AnnotationContent
    active_seconds: float | None
    taxonomy_version: str


@dataclass(frozen=True, slots=True)
class StoredAnnotation:
    annotation_id: str
    clip_id: str
    annotator: str
    content: AnnotationContent
    status: AnnotationStatus
    created_at: datetime
    amended_at: datetime | None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    annotation: StoredAnnotation
    #: True when this was a repeat of an earlier request with the same key and body.
    replayed: bool


@dataclass(frozen=True, slots=True)
class ExportRow:
    annotation: StoredAnnotation
    source_name: str | None
    locale: str
    taxonomy_version: str


@dataclass(frozen=True, slots=True)
class Activity:
    """One of an annotator's annotations, for throughput statistics."""

    created_at: datetime
    active_seconds: float | None


class Repository(Protocol):
    # -- admin (ingest, tokens)

    def add_clip(self, clip: NewClip) -> str | None:
        """Queue a clip; its new random clip id, or None when the same sha256 is already queued."""
        ...

    def add_clips(self, clips: Iterable[NewClip]) -> list[str | None]:
        """`add_clip` for many clips, one result per clip in order (None for a duplicate, also of
        an earlier clip in `clips`); durable in batches rather than clip by clip."""
        ...

    def create_token(self, name: str, role: Role) -> str:
        """A new random token for `name`. Returned once in plaintext; only its hash is kept."""
        ...

    def principal_for_token(self, token: str) -> Principal | None: ...

    def undrafted_clips(self, clip_ids: Sequence[str] | None = None) -> list[DraftTarget]:
        """Open clips with neither an ASR hint nor a machine draft, in queue order (only those
        among `clip_ids` when given)."""
        ...

    def set_draft(self, clip_id: str, text: str | None, words: Sequence[tuple[str, float]]) -> bool:
        """Store a machine draft (its text, None for no speech, and its words) on a clip that has
        neither hint nor draft; False when it has one by now (a hint is never overwritten)."""
        ...

    # -- leases

    def claim(self, annotator: str, count: int, ttl_s: int, now: datetime) -> list[LeaseGrant]:
        """Lease up to `count` clips that need annotation, that nobody holds and that this
        annotator has neither annotated nor skipped. Each lease bumps its clip's fence."""
        ...

    def renew(self, lease_id: str, annotator: str, ttl_s: int, now: datetime) -> LeaseStatus: ...

    def release(
        self,
        lease_id: str,
        annotator: str,
        reason: ReleaseReason,
        detail: str | None,
        now: datetime,
    ) -> None: ...

    def lease_audio(self, lease_id: str, annotator: str, now: datetime) -> StoredAudio:
        """The stored audio of a live lease held by `annotator`."""
        ...

    # -- annotations

    def submit(self, annotator: str, submission: Submission, now: datetime) -> SubmitResult: ...

    def submit_many(
        self, items: Sequence[tuple[str, Submission]], now: datetime
    ) -> list[SubmitResult | Rejection]:
        """`submit` for each (annotator, submission) in order, as ONE durable transaction with a
        savepoint per item: a refused item's result is its `Rejection` and it changes nothing,
        the others are unaffected (the same outcome as submitting them one by one, idempotency
        included), and every accepted item is durable when this returns. Used by the batch
        endpoint and by group commit (submits arriving together share one fsync). Errors that are
        not `Rejection`s abort the whole transaction and propagate."""
        ...

    def get_annotation(self, annotation_id: str) -> StoredAnnotation | None: ...

    def amend(
        self,
        annotation_id: str,
        annotator: str,
        content: AnnotationContent,
        now: datetime,
        window_s: int,
    ) -> StoredAnnotation:
        """Replace an annotation's content; only its author, only within `window_s` of creation.
        Escalation is sticky: an amendment never takes an escalated annotation off the list."""
        ...

    def activity(self, annotator: str, since: datetime) -> list[Activity]:
        """The annotator's annotations created at or after `since`, oldest first."""
        ...

    def count_annotations(self, annotator: str) -> int: ...

    def escalations(self, limit: int) -> list[StoredAnnotation]:
        """Escalated annotations, newest first."""
        ...

    def export(self) -> Iterator[ExportRow]:
        """Every annotation, oldest first; safe to iterate from another thread."""
        ...

    def close(self) -> None: ...
