"""The storage interface the service uses, and nothing else: `SqliteRepository` and
`PostgresRepository` (both on `api.server.sql_repo.SqlRepository`) implement it, and
`api.server.backends.open_repository(url)` picks one from a database URL.

Every method that changes the queue is one atomic transaction in the backend; the queue rules are
pure decisions (`api.server.rules`) over rows read inside that transaction, and a refusal is an
`api.server.errors.Rejection` (status + machine-readable reason), so the rules hold across several
server processes on one database.

Synchronous, called inline from the `async` routes (not `async`, not on a thread pool). Measured
with `python scripts/repo_call_cost.py --cycles 1000` (one claim + one durable submit per cycle,
loopback PostgreSQL 15, this shared 2-core box at load 6-10), per cycle inline vs
`asyncio.to_thread`: SQLite 0.55/0.76, 1.86/1.43, 2.00/1.32, 4.40/2.28 ms; PostgreSQL
3.98/7.59, 10.56/14.64, 12.13/11.62, 12.62/13.88 ms. The hop buys nothing that holds from run
to run: the time is the database's (round trips, WAL flush), and on 2 cores the GIL and the
database's own processes leave no CPU for a thread to overlap with. Inline keeps what matters:
group commit's shape (submits that arrive in one loop turn share one durable `submit_many`, run
in the next turn, with no thread handing results back), one interface that the CLI commands,
ingest, `db copy` and the tests use without an event loop, and no second pool to size. A
process uses one database connection at a time (plus the export's own); capacity comes from
`serve --workers N` and more `serve` processes, which hold nothing that matters between
requests. Were the database far away (milliseconds per round trip) the answer would change:
move the calls to a thread pool as large as the connection pool and make group commit's flush
a task. One piece does run on a thread: where a backend `defers_sync` (SQLite), group commit
commits on the loop and the flush to disk (`sync_commits`, an fdatasync that touches no
connection) runs on one, so the loop serves other requests during the fsync instead of blocking
in it (`api.server.group_commit`). And where a backend `shares_writes` (both do), the claims
of one loop turn run in one transaction (`api.server.claim_group`).

How the claim differs by backend: SQLite serialises writers, so a claim is a `BEGIN IMMEDIATE`
transaction that selects the first open, unleased clips and stamps a lease on them. PostgreSQL
claims with one statement, `UPDATE clips ... WHERE seq IN (SELECT seq ... ORDER BY seq LIMIT n
FOR UPDATE SKIP LOCKED) RETURNING ...`: concurrent claimers skip each other's locked rows
instead of waiting. `submit` and `amend` lock the lease, clip and annotation rows they decide on
(`SELECT ... FOR UPDATE`); every write names its lease by `lease_id` and `fence`; idempotency
rests on the UNIQUE (annotator, idempotency_key) constraint in both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from api.models import AnnotationStatus, ReleaseReason, Role
from api.server.errors import Rejection
from api.server.records import NewClip

if TYPE_CHECKING:
    from api.server.sql_repo import ClipBatcher


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a bearer token belongs to. `name` is the annotator's identity everywhere (unique per
    person: `api.server.people_store`); `person_id` the person's random id."""

    name: str
    role: Role
    person_id: str | None = None
    #: When the token stops working (`token create --expires`); None: never.
    expires_at: datetime | None = None


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
    #: Granted by an earlier request with the same idempotency key (a retry's answer).
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    lease_id: str
    fence: int
    expires_at: datetime
    released: bool


@dataclass(frozen=True, slots=True)
class StoredAudio:
    """A clip's bytes as the audio store holds them (a local file or a database row)."""

    data: bytes
    media_type: str

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class DraftTarget:
    """A queued clip that has neither an ASR hint nor a machine draft (see `api.server.asr`)."""

    clip_id: str
    source_name: str | None
    duration_s: float
    #: Its audio's key in the backend's audio store (`Repository.read_audio`): read by the
    #: drafting worker when it gets to the clip, not all up front.
    sha256: str


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
    #: When the retention policy deleted the clip's audio (`api.server.retention`); None: kept.
    audio_deleted_at: datetime | None = None


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

    def batcher(self) -> ClipBatcher:
        """`add_clip` answered at once and made durable in batches (`annotator ingest`); call
        its `flush()` before reporting success."""
        ...

    def set_annotations_per_clip(self, k: int) -> None:
        """Make `k` the queue's K, for clips queued now and later."""
        ...

    def create_token(self, name: str, role: Role) -> str:
        """A new random token for the person `name` (made when new). Returned once in plaintext;
        only its hash is kept. The rules of `annotator token create` (unique, validated names,
        `--same-person`, `--expires`) are `api.server.people_store.PeopleStore.create_token`."""
        ...

    def principal_for_token(self, token: str, now: datetime | None = None) -> Principal | None:
        """Who a live (neither revoked nor expired at `now`, default the system time) token
        belongs to."""
        ...

    def revoke_tokens(self, name: str) -> int:
        """Revoke every live token of `name`; how many were revoked."""
        ...

    def token_generation(self) -> int:
        """A number that changes whenever a token is revoked (cheap to poll)."""
        ...

    def undrafted_clips(self, clip_ids: Sequence[str] | None = None) -> list[DraftTarget]:
        """Open clips with neither an ASR hint nor a machine draft, in queue order (only those
        among `clip_ids` when given)."""
        ...

    def read_audio(self, sha256: str) -> bytes:
        """A queued clip's stored bytes (`AudioMissing` when they are gone)."""
        ...

    def set_draft(self, clip_id: str, text: str | None, words: Sequence[tuple[str, float]]) -> bool:
        """Store a machine draft (its text, None for no speech, and its words) on a clip that has
        neither hint nor draft; False when it has one by now (a hint is never overwritten)."""
        ...

    # -- leases

    def claim(
        self,
        annotator: str,
        count: int,
        ttl_s: int,
        now: datetime,
        *,
        max_live: int | None = None,
        max_lifetime_s: int | None = None,
        request_key: str | None = None,
        replay: bool = True,
    ) -> list[LeaseGrant]:
        """Lease up to `count` clips that need annotation, that nobody holds and that this
        annotator has neither annotated nor skipped. Each lease bumps its clip's fence.
        `max_live` caps the live leases this annotator holds afterwards (fewer are granted; at
        the cap a 409 `lease_cap` names it); `max_lifetime_s` caps the ttl. `request_key` (the
        request's Idempotency-Key) is stored with the leases granted; with `replay`, an earlier
        claim's leases under that key that still live are the answer (`replayed`), unchanged,
        and nothing new is leased; when none live the key is spent and this is a new claim."""
        ...

    def renew(
        self,
        lease_id: str,
        annotator: str,
        ttl_s: int,
        now: datetime,
        *,
        max_lifetime_s: int | None = None,
    ) -> LeaseStatus:
        """Extend a live lease by `ttl_s` from now, never past `max_lifetime_s` after its grant."""
        ...

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
        self, items: Sequence[tuple[str, Submission]], now: datetime, *, sync: bool = True
    ) -> list[SubmitResult | Rejection]:
        """`submit` for each (annotator, submission) in order, as ONE durable transaction with a
        savepoint per item: a refused item's result is its `Rejection` and it changes nothing,
        the others are unaffected (the same outcome as submitting them one by one, idempotency
        included), and every accepted item is durable when this returns. Used by the batch
        endpoint and by group commit (submits arriving together share one fsync). Errors that are
        not `Rejection`s abort the whole transaction and propagate.

        `sync=False` (only where `defers_sync`): the transaction commits without its flush to
        stable storage, and the caller must call `sync_commits()` before telling anyone it
        is stored."""
        ...

    @property
    def defers_sync(self) -> bool:
        """Whether `submit_many(sync=False)` can leave a commit's flush to `sync_commits()`,
        which touches no connection and so may run on a thread while the event loop serves
        requests (SQLite: an fdatasync of the WAL; PostgreSQL flushes inside COMMIT, on its
        side)."""
        ...

    def sync_commits(self) -> None:
        """Make every commit made so far durable (blocking; safe from any thread)."""
        ...

    def get_annotation(self, annotation_id: str) -> StoredAnnotation | None: ...

    def amend(
        self,
        annotation_id: str,
        annotator: str,
        content: AnnotationContent,
        now: datetime,
        window_s: int,
        escalation_flags: frozenset[str] = frozenset(),
    ) -> StoredAnnotation:
        """Replace an annotation's content; only its author, only within `window_s` of creation.
        Escalation is sticky: an amendment never takes an escalated annotation off the list, nor
        removes its `escalation_flags` or its note (422 `escalation_kept`). Every amendment is
        appended to the history (`api.server.amendment_log`) in the same transaction."""
        ...

    def activity(self, annotator: str, since: datetime) -> list[Activity]:
        """The annotator's annotations created at or after `since`, oldest first."""
        ...

    def count_annotations(self, annotator: str) -> int: ...

    def export(self) -> Iterator[ExportRow]:
        """Every annotation, oldest first; safe to iterate from another thread."""
        ...

    #: The schema versions opening this database applied (empty when it was current).
    applied_migrations: list[int]

    def describe(self) -> str:
        """The database, for messages (never a password)."""
        ...

    def close(self) -> None: ...
