"""The supervisors' procedure as pure decisions (`api.server.escalation_rules`), no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.models import AuditAction, EscalationKind, EscalationState
from api.server import escalation_rules as er
from api.server.errors import Rejection

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACK, RESOLVE, REOPEN = AuditAction.ACK, AuditAction.RESOLVE, AuditAction.REOPEN


def _t(number: int, action: AuditAction, actor: str, minutes: int, **kw: str) -> er.Transition:
    to = {
        ACK: EscalationState.ACKNOWLEDGED,
        RESOLVE: EscalationState.RESOLVED,
        REOPEN: EscalationState.OPEN,
    }[action]
    return er.Transition(
        number, action, actor, T0 + timedelta(minutes=minutes), to, kw.get("o"), kw.get("n")
    )


def test_ids_round_trip_and_foreign_ids_are_none() -> None:
    for kind in EscalationKind:
        assert er.parse_escalation_id(er.escalation_id(kind, "abc_-1")) == (kind, "abc_-1")
    assert er.parse_escalation_id("a_") is None and er.parse_escalation_id("xyz") is None


def test_severity_order() -> None:
    assert er.severity(EscalationKind.FLAG, ["pii", "self_harm", "distress"]) == 0
    assert er.severity(EscalationKind.FLAG, ["distress"]) == 1
    assert er.severity(EscalationKind.FLAG, ["minor"]) == 2
    assert er.severity(EscalationKind.CANNOT_JUDGE, []) == 3


def test_replay_follows_the_numbers_not_the_list_order() -> None:
    events = [
        _t(3, REOPEN, "sam", 30),
        _t(1, ACK, "sue", 10),
        _t(2, RESOLVE, "sue", 20, o="false_alarm", n="tv"),
    ]
    s = er.replay(T0, events)
    assert s.state is EscalationState.OPEN and s.last_number == 3
    assert s.clock_start == T0 + timedelta(minutes=30) and s.acknowledged_by is None
    done = er.replay(T0, events[1:])
    assert (done.state, done.resolved_by, done.outcome, done.resolution_note) == (
        EscalationState.RESOLVED,
        "sue",
        "false_alarm",
        "tv",
    )
    # Resolved straight from open: it counts as acknowledged then.
    direct = er.replay(T0, [_t(1, RESOLVE, "sam", 5, o="x", n="y")])
    assert direct.acknowledged_by == "sam" and direct.acknowledged_at == T0 + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("history", "action", "actor", "expect"),
    [
        ([], ACK, "sue", EscalationState.ACKNOWLEDGED),
        ([], RESOLVE, "sue", EscalationState.RESOLVED),
        ([], REOPEN, "sue", "not_resolved"),
        ([_t(1, ACK, "sue", 1)], ACK, "sue", "repeat"),
        ([_t(1, ACK, "sue", 1)], ACK, "sam", "already_acknowledged"),
        ([_t(1, ACK, "sue", 1)], RESOLVE, "sam", EscalationState.RESOLVED),
        ([_t(1, RESOLVE, "sue", 1, o="o", n="n")], RESOLVE, "sue", "repeat"),
        ([_t(1, RESOLVE, "sue", 1, o="o", n="n")], RESOLVE, "sam", "already_resolved"),
        ([_t(1, RESOLVE, "sue", 1, o="o", n="n")], ACK, "sam", "already_resolved"),
        ([_t(1, RESOLVE, "sue", 1, o="o", n="n")], REOPEN, "sam", EscalationState.OPEN),
    ],
)
def test_next_transition(
    history: list[er.Transition], action: AuditAction, actor: str, expect: object
) -> None:
    standing = er.replay(T0, history)
    if isinstance(expect, EscalationState):
        decision = er.next_transition(standing, action, actor, "o", "n")
        assert decision.to_state is expect and not decision.repeat
    elif expect == "repeat":
        assert er.next_transition(standing, action, actor, "o", "n").repeat
    else:
        with pytest.raises(Rejection) as e:
            er.next_transition(standing, action, actor, "o", "n")
        assert e.value.status_code == 409 and e.value.reason == expect


def test_service_level_edges() -> None:
    s = er.replay(T0, [])
    due = T0 + timedelta(seconds=900)
    assert not er.service_level(s, due, 900, 3600).ack_overdue  # at the deadline: on time
    late = er.service_level(s, due + timedelta(seconds=1), 900, 3600)
    assert late.ack_overdue and not late.resolve_overdue
    resolved = er.replay(T0, [_t(1, RESOLVE, "sue", 1, o="o", n="n")])
    never = er.service_level(resolved, T0 + timedelta(days=9), 900, 3600)
    assert not never.ack_overdue and not never.resolve_overdue
    assert er.sort_key(True, 3, T0) < er.sort_key(False, 0, T0 - timedelta(days=1))
