"""The supervisors' procedure as pure decisions (issue 11): no SQL, no HTTP, no clock of its own.

An escalation's state is its transitions replayed (`replay`); what a supervisor may do next is
`next_transition`; the service levels and the list order are `service_level` and `sort_key`.
`api.server.escalation_store` reads the rows inside its transaction and asks these functions, so
the rules hold across several server processes on one database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from api.models import AuditAction, EscalationKind, EscalationState, ServiceLevel
from api.server.errors import Rejection

#: Escalation flags in order of severity, most severe first; any other escalation flag comes
#: after them, and a `cannot_judge` skip last.
SEVERITY_ORDER: tuple[str, ...] = ("self_harm", "distress")
OTHER_FLAG_SEVERITY = len(SEVERITY_ORDER)
CANNOT_JUDGE_SEVERITY = OTHER_FLAG_SEVERITY + 1

#: Escalation ids name their source: an escalated annotation or a `cannot_judge` lease.
FLAG_PREFIX = "a_"
SKIP_PREFIX = "s_"


def escalation_id(kind: EscalationKind, source_id: str) -> str:
    return (FLAG_PREFIX if kind is EscalationKind.FLAG else SKIP_PREFIX) + source_id


def parse_escalation_id(value: str) -> tuple[EscalationKind, str] | None:
    """(kind, annotation or lease id), or None for an id this server never issued."""
    if value.startswith(FLAG_PREFIX) and len(value) > len(FLAG_PREFIX):
        return EscalationKind.FLAG, value[len(FLAG_PREFIX) :]
    if value.startswith(SKIP_PREFIX) and len(value) > len(SKIP_PREFIX):
        return EscalationKind.CANNOT_JUDGE, value[len(SKIP_PREFIX) :]
    return None


def severity(kind: EscalationKind, flags: Iterable[str]) -> int:
    """0 is the most severe."""
    if kind is EscalationKind.CANNOT_JUDGE:
        return CANNOT_JUDGE_SEVERITY
    given = set(flags)
    for rank, flag in enumerate(SEVERITY_ORDER):
        if flag in given:
            return rank
    return OTHER_FLAG_SEVERITY


@dataclass(frozen=True, slots=True)
class Transition:
    """One numbered audit event (ack, resolve or reopen; plays are not transitions)."""

    number: int
    action: AuditAction
    actor: str
    at: datetime
    to_state: EscalationState
    outcome: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Standing:
    """Where an escalation stands after its transitions."""

    state: EscalationState
    #: The newest transition's number (0 when none): the next one must be this + 1.
    last_number: int
    #: When its service-level clock started: raised, or reopened.
    clock_start: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    outcome: str | None = None
    resolution_note: str | None = None


def replay(raised_at: datetime, transitions: Sequence[Transition]) -> Standing:
    """The state after `transitions` (in number order) of an escalation raised at `raised_at`."""
    s = Standing(EscalationState.OPEN, 0, raised_at)
    for t in sorted(transitions, key=lambda t: t.number):
        if t.action is AuditAction.ACK:
            s = Standing(
                EscalationState.ACKNOWLEDGED,
                t.number,
                s.clock_start,
                acknowledged_by=t.actor,
                acknowledged_at=t.at,
            )
        elif t.action is AuditAction.RESOLVE:
            s = Standing(
                EscalationState.RESOLVED,
                t.number,
                s.clock_start,
                acknowledged_by=s.acknowledged_by or t.actor,
                acknowledged_at=s.acknowledged_at or t.at,
                resolved_by=t.actor,
                resolved_at=t.at,
                outcome=t.outcome,
                resolution_note=t.note,
            )
        elif t.action is AuditAction.REOPEN:
            s = Standing(EscalationState.OPEN, t.number, t.at)
    return s


@dataclass(frozen=True, slots=True)
class Decision:
    """What a requested action does: `to_state`, or nothing (`repeat`: the same person's same
    request again, e.g. a retry after a lost response)."""

    from_state: EscalationState
    to_state: EscalationState
    repeat: bool = False


def next_transition(
    s: Standing,
    action: AuditAction,
    actor: str,
    outcome: str | None = None,
    note: str | None = None,
) -> Decision:
    """May `actor` do `action` now? A refusal is a 409 naming why."""
    state = s.state
    if action is AuditAction.ACK:
        if state is EscalationState.OPEN:
            return Decision(state, EscalationState.ACKNOWLEDGED)
        if state is EscalationState.ACKNOWLEDGED:
            if s.acknowledged_by == actor:
                return Decision(state, state, repeat=True)
            raise Rejection(
                409, "already_acknowledged", f"{s.acknowledged_by} acknowledged it already"
            )
        raise Rejection(409, "already_resolved", "it is resolved; reopen it first")
    if action is AuditAction.RESOLVE:
        if state is EscalationState.RESOLVED:
            if (s.resolved_by, s.outcome, s.resolution_note) == (actor, outcome, note):
                return Decision(state, state, repeat=True)
            raise Rejection(409, "already_resolved", f"{s.resolved_by} resolved it already")
        return Decision(state, EscalationState.RESOLVED)
    if action is AuditAction.REOPEN:
        if state is EscalationState.RESOLVED:
            return Decision(state, EscalationState.OPEN)
        raise Rejection(409, "not_resolved", f"it is {state.value}, not resolved")
    raise ValueError(f"{action} is not a transition")  # pragma: no cover - plays go elsewhere


def require_playable(s: Standing) -> None:
    """A resolved escalation's audio is no longer served (410)."""
    if s.state is EscalationState.RESOLVED:
        raise Rejection(410, "escalation_resolved", "it is resolved: its audio is no longer served")


def service_level(s: Standing, now: datetime, ack_s: int, resolve_s: int) -> ServiceLevel:
    ack_due = s.clock_start + timedelta(seconds=ack_s)
    resolve_due = s.clock_start + timedelta(seconds=resolve_s)
    return ServiceLevel(
        ack_due_at=ack_due,
        resolve_due_at=resolve_due,
        ack_overdue=s.state is EscalationState.OPEN and now > ack_due,
        resolve_overdue=s.state is not EscalationState.RESOLVED and now > resolve_due,
    )


def sort_key(overdue: bool, severity_rank: int, raised_at: datetime) -> tuple[int, int, float]:
    """Overdue first, then the most severe, then the oldest."""
    return (0 if overdue else 1, severity_rank, raised_at.timestamp())
