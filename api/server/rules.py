"""The queue rules as pure decisions over rows a repository fetched (no SQL, no IO, no clock).

A repository reads the rows inside its write transaction (locked where the backend locks rows),
asks these functions what the rules say, and writes accordingly; a `Rejection` raised here
leaves the transaction unwritten. Every backend therefore applies the same rules, and the rules
can be read (and tested) in one place. Times are unix seconds from the server's injectable clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.models import AnnotationStatus, ReleaseReason
from api.server.errors import Rejection, not_found

#: Releasing for one of these reasons means "not for me": the clip is not offered to that
#: annotator again. UNUSED (prefetched, never shown) and expiry put no such mark.
SKIP_REASONS = tuple(r.value for r in ReleaseReason if r is not ReleaseReason.UNUSED)


@dataclass(frozen=True, slots=True)
class LeaseRow:
    lease_id: str
    clip_id: str
    annotator: str
    fence: int
    expires_at: float
    released: bool
    #: When it was granted (renewals never move this): its lifetime cap counts from here.
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ClipState:
    completed: int
    needed: int
    #: The clip's newest lease while it may be live, and that lease's expiry.
    current_lease: str | None
    leased_until: float | None


def own_lease(lease: LeaseRow | None, annotator: str) -> LeaseRow:
    """The lease, when it exists and is `annotator`'s. Someone else's answers exactly as an id the
    server never issued: a 403 would tell a caller that a leaked or guessed id is real."""
    if lease is None or lease.annotator != annotator:
        raise not_found("lease")
    return lease


def lease_allowance(live: int, cap: int, asked: int) -> int:
    """How many of the `asked` leases a person holding `live` may get under the per-person `cap`
    (finding 2: one person must not lease the whole queue). None left is a refusal that names
    the cap, so a client can tell the person why instead of "the queue is empty"."""
    room = cap - live
    if room <= 0:
        raise Rejection(
            409,
            "lease_cap",
            f"you already hold {live} live leases, the most one person may hold at once"
            f" (this server's limit is {cap}); submit, skip or release some first",
        )
    return min(asked, room)


def lease_end(lease: LeaseRow, now: float, ttl_s: int, lifetime_s: int | None) -> float:
    """A renewal's new expiry: `ttl_s` from now, but never past the lease's lifetime cap (its
    grant plus `lifetime_s`), so renewing cannot hold a clip for ever."""
    end = now + ttl_s
    return end if lifetime_s is None else min(end, lease.created_at + lifetime_s)


def is_live(lease: LeaseRow, now: float) -> bool:
    return not lease.released and lease.expires_at > now


def require_live(lease: LeaseRow, now: float) -> None:
    if lease.released:
        raise Rejection(410, "lease_released", "this lease was released or already submitted")
    if lease.expires_at <= now:
        raise Rejection(410, "lease_expired", "this lease has expired; lease the clip again")


def check_replay(stored_hash: str, request_hash: str) -> None:
    """A request reusing an Idempotency-Key is a replay only with the same body."""
    if stored_hash != request_hash:
        raise Rejection(
            422,
            "idempotency_mismatch",
            "this Idempotency-Key was already used for a different annotation; "
            "use a new key for new content",
            field="Idempotency-Key",
        )


def submission_status(
    lease: LeaseRow,
    fence: int,
    clip: ClipState,
    own_annotation: str | None,
    now: float,
) -> AnnotationStatus:
    """Whether a submission on `lease` (the annotator's own) is accepted, accepted late, or
    refused: a stale fence, a clip this person already annotated (`own_annotation` is that
    annotation's id), a clip someone else completed, or a clip leased again to someone else."""
    if fence != lease.fence:
        raise Rejection(409, "stale_fence", "the fence does not match this lease", field="fence")
    if own_annotation is not None:
        raise Rejection(
            409, "already_annotated", f"you already annotated this clip ({own_annotation})"
        )
    if clip.completed >= clip.needed:
        raise Rejection(
            409, "completed_by_other", "someone else completed this clip after your lease expired"
        )
    live = is_live(lease, now)
    if not live and clip.current_lease != lease.lease_id and (clip.leased_until or 0) > now:
        # The clip was leased again since (a newer fence) and that lease is live.
        raise Rejection(
            409,
            "stale_fence",
            "your lease expired and the clip is now leased to someone else",
            field="fence",
        )
    return AnnotationStatus.ACCEPTED if live else AnnotationStatus.LATE


def require_author(author: str, annotator: str) -> None:
    """Only an annotation's author may change it; to anyone else it does not exist (no oracle)."""
    if author != annotator:
        raise not_found("annotation")


def check_amend(author: str, created_at: float, annotator: str, now: float, window_s: int) -> None:
    require_author(author, annotator)
    if now > created_at + window_s:
        raise Rejection(
            409,
            "amend_window_closed",
            f"annotations can be amended for {window_s} s after submission",
        )


def keep_escalation(
    escalated: bool,
    before_flags: tuple[str, ...],
    after_flags: tuple[str, ...],
    before_note: str | None,
    after_note: str | None,
    escalation_flags: frozenset[str],
) -> None:
    """An amend cannot take back why a clip was escalated (finding 8): on an escalated
    annotation the escalating flags stay and the note stays (it may be added to). Adding flags is
    always fine; only a supervisor's resolution closes an escalation."""
    if not escalated:
        return
    dropped = [f for f in before_flags if f in escalation_flags and f not in after_flags]
    if dropped:
        raise Rejection(
            422,
            "escalation_kept",
            f"flags: {', '.join(dropped)} escalated this clip and cannot be removed by an amend;"
            " a supervisor's resolution closes an escalation",
            field="flags",
        )
    if before_note and not (after_note or "").startswith(before_note):
        raise Rejection(
            422,
            "escalation_kept",
            "note: the note of an escalated annotation cannot be removed or changed by an amend"
            " (you may add to its end); a supervisor's resolution closes an escalation",
            field="note",
        )
