"""Plain records the local store hands to the TUI, the sync engine and the CLI.

They are frozen dataclasses rather than pydantic models: the TUI builds a Draft on every debounced
keystroke batch, and that path must stay cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from api.models import AnnotationIn, Lease

#: Refusals of what a well-formed field says under today's rules (a control character, a length
#: or pattern an older annotator allowed), as opposed to a body of the wrong shape.
_RULE_REFUSALS = frozenset(
    {"unsafe_character", "string_too_long", "string_pattern_mismatch", "too_long"}
)


def parse_annotation(body: str) -> AnnotationIn:
    """A stored body as the model. One stored by an older annotator that today's rules refuse
    (say a control character in its transcript) is still shown and sent — the server's 422 then
    puts it on the rejected list, kept — rather than making the whole outbox unreadable.

    A body of the wrong shape (not JSON, a field missing or of the wrong type: a damaged disk)
    raises ValidationError: the sync engine rejects that row alone as malformed."""
    try:
        return AnnotationIn.model_validate_json(body)
    except ValidationError as e:
        if any(err["type"] not in _RULE_REFUSALS for err in e.errors(include_input=False)):
            raise
        return AnnotationIn.model_construct(**json.loads(body))


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: A 4xx other than 409: the server will never take it as is. Kept and shown, never dropped.
    REJECTED = "rejected"
    #: 409: someone else completed the clip while this lease was expired, or the fence went stale.
    CONFLICT = "conflict"


class OutboxKind(StrEnum):
    SUBMIT = "submit"
    #: A PATCH of an annotation that may already have reached the server (undo / amend).
    AMEND = "amend"


class LeaseOrigin(StrEnum):
    #: Leased by the TUI to keep the next clips ready: released at quit unless it holds a draft.
    PREFETCH = "prefetch"
    #: Leased for offline work (`annotator checkout`, alt+o): kept until synced or released.
    CHECKOUT = "checkout"


@dataclass(frozen=True, slots=True)
class Draft:
    lease_id: str
    clip_id: str
    transcript: str = ""
    intent: str | None = None
    flags: tuple[str, ...] = ()
    note: str | None = None
    #: (row, column) of the transcript editor's cursor, so a restart puts it back.
    cursor: tuple[int, int] = (0, 0)
    #: Epoch seconds; the store stamps it when the caller leaves it at 0.
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A live lease as the store knows it: who leased it, for what, and whether work sits on it."""

    lease: Lease
    origin: LeaseOrigin
    #: The session holding it (`host:pid:start`), None when no session has claimed it.
    session: str | None
    has_draft: bool

    @property
    def lease_id(self) -> str:
        return self.lease.lease_id


@dataclass(frozen=True, slots=True)
class OutboxItem:
    key: str
    kind: OutboxKind
    clip_id: str
    lease_id: str
    fence: int
    #: The exact JSON sent on every attempt: the server hashes the body per idempotency key.
    body_json: str
    attempts: int
    next_attempt_at: float
    state: OutboxState
    created_at: float
    last_error: str | None = None
    #: For amendments: the submission they amend and, once it is acknowledged, its annotation id.
    target_key: str | None = None
    annotation_id: str | None = None
    status_code: int | None = None
    reason: str | None = None

    def annotation(self) -> AnnotationIn:
        return parse_annotation(self.body_json)


@dataclass(frozen=True, slots=True)
class HistoryItem:
    key: str
    clip_id: str
    lease_id: str
    #: The latest content the annotator gave (an amendment replaces it here at once).
    annotation: AnnotationIn
    state: OutboxState
    submitted_at: float
    annotation_id: str | None = None
    status: str | None = None  # accepted | late, once acknowledged
    amend_until: str | None = None  # ISO 8601, from the receipt
    #: An amendment is waiting to be sent.
    amend_pending: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ConflictItem:
    key: str
    clip_id: str
    lease_id: str
    annotation: AnnotationIn
    reason: str
    message: str
    at: float
