"""The supervisors' procedure (issue 11) against a real server on both backends: the lifecycle and
its audit trail, service levels on a FakeClock, cannot_judge skips, the escalated clip's audio,
the long-poll, and the append-only audit table."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from api.client import Conflict, Gone, NotFound, QueueClient, RequestRejected
from api.models import (
    AnnotationPatch,
    AuditAction,
    BatchItem,
    EscalationKind,
    EscalationPage,
    EscalationState,
    ReleaseReason,
)
from api.server.escalation_rules import escalation_id
from tests.fixtures.server import ClockedServer, LiveServer, start_live_server
from tests.server.helpers import annotation, key

OUTCOME = "referred_per_policy"


SUE = "sue"


@pytest.fixture
def people(clocked_server: ClockedServer) -> tuple[QueueClient, QueueClient, QueueClient]:
    """(annotator alice, supervisor sue, supervisor sam) on the clocked server."""
    s = clocked_server
    tokens = {"alice": s.token("alice"), SUE: s.token(SUE, "supervisor")}
    s.tokens = tokens  # type: ignore[attr-defined]
    return (
        QueueClient(s.url, tokens["alice"]),
        QueueClient(s.url, tokens[SUE]),
        QueueClient(s.url, s.token("sam", "supervisor")),
    )


def _flagged(alice: QueueClient, flags: list[str], note: str = "someone crying") -> str:
    lease = alice.lease().leases[0]
    receipt = alice.submit(annotation(lease, flags=flags, note=note), key())
    return escalation_id(EscalationKind.FLAG, receipt.annotation_id)


def test_lifecycle_and_its_audit_trail(clocked_server: ClockedServer, people, test_wavs) -> None:
    alice, sue, sam = people
    clocked_server.ingest(test_wavs(1))
    eid = _flagged(alice, ["distress"])
    [row] = sue.escalations().escalations
    assert (row.escalation_id, row.state, row.kind) == (eid, EscalationState.OPEN, "flag")
    assert row.annotator == "alice" and row.note == "someone crying" and row.severity == 1

    clocked_server.clock.advance(60)
    acked = sue.acknowledge(eid)
    assert acked.escalation.state is EscalationState.ACKNOWLEDGED
    assert acked.escalation.acknowledged_by == "sue"
    assert sue.acknowledge(eid).audit == acked.audit  # a retry: no second event
    with pytest.raises(Conflict) as e:
        sam.acknowledge(eid)
    assert e.value.reason == "already_acknowledged"
    with pytest.raises(Conflict) as e:
        sam.reopen(eid)
    assert e.value.reason == "not_resolved"

    with pytest.raises(RequestRejected) as bad:
        sue.resolve(eid, "shrug", "looked at it")
    assert bad.value.status_code == 422 and bad.value.error.field == "outcome"
    with clocked_server.client(clocked_server.tokens[SUE]) as raw:  # type: ignore[attr-defined]
        for note in ("", "   "):
            r = raw.post(f"/v1/escalations/{eid}/resolve", json={"outcome": OUTCOME, "note": note})
            assert r.status_code == 422, note
        r = raw.post(f"/v1/escalations/{eid}/resolve", json={"outcome": OUTCOME})
        assert r.status_code == 422 and r.json()["field"] == "note"
    assert sue.escalation(eid).escalation.state is EscalationState.ACKNOWLEDGED

    clocked_server.clock.advance(60)
    done = sam.resolve(eid, OUTCOME, "called the on-call lead")
    assert done.escalation.state is EscalationState.RESOLVED
    assert (done.escalation.resolved_by, done.escalation.outcome) == ("sam", OUTCOME)
    assert done.escalation.resolution_note == "called the on-call lead"
    clocked_server.clock.advance(60)
    again = sue.reopen(eid, "the caller rang back")
    assert again.escalation.state is EscalationState.OPEN
    assert again.escalation.acknowledged_by is None

    trail = sue.escalation(eid).audit
    assert [(a.action, a.actor, a.from_state, a.to_state) for a in trail] == [
        (AuditAction.ACK, "sue", "open", "acknowledged"),
        (AuditAction.RESOLVE, "sam", "acknowledged", "resolved"),
        (AuditAction.REOPEN, "sue", "resolved", "open"),
    ]
    assert [a.note for a in trail] == [None, "called the on-call lead", "the caller rang back"]
    assert trail[1].outcome == OUTCOME
    assert [a.at for a in trail] == sorted(a.at for a in trail) and len({a.at for a in trail}) == 3


def test_detail_holds_the_annotation_and_unknown_ids_are_404(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(2))
    eid = _flagged(alice, ["self_harm", "pii"], note="says they want to end it")
    plain = alice.submit(annotation(alice.lease().leases[0]), key())
    detail = sue.escalation(eid)
    assert detail.annotation is not None
    assert detail.annotation.flags == ["self_harm", "pii"]
    assert detail.annotation.transcript == "wake me up at seven"
    assert detail.audit == [] and detail.escalation.severity == 0
    # A clip nobody escalated is not reachable through these routes: not its detail, not its
    # audio, not an action on it.
    for unknown in (escalation_id(EscalationKind.FLAG, plain.annotation_id), "a_nope", "zz"):
        with pytest.raises(NotFound):
            sue.escalation(unknown)
        with pytest.raises(NotFound):
            sue.escalation_audio(unknown)
        with pytest.raises(NotFound):
            sue.acknowledge(unknown)


def test_an_amended_escalation_stays_listed_with_its_current_content(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    receipt = alice.submit(annotation(lease, flags=["distress"], note="a scream"), key())
    before = sue.escalations()
    alice.amend(receipt.annotation_id, AnnotationPatch(transcript="help me"))
    after = sue.escalations(cursor=before.cursor, wait=2)
    assert after.cursor != before.cursor  # an amendment is news
    assert [e.transcript for e in after.escalations] == ["help me"]


def test_service_levels_mark_and_sort_overdue_first(
    make_clocked_server: Callable[..., ClockedServer], test_wavs
) -> None:
    server = make_clocked_server(escalation_ack_s=15 * 60, escalation_resolve_s=24 * 3600)
    alice = QueueClient(server.url, server.token("alice"))
    sue = QueueClient(server.url, server.token("sue", "supervisor"))
    server.ingest(test_wavs(3))
    offensive = _flagged(alice, ["distress"])
    page = sue.escalations()
    assert page.service_levels.ack_seconds == 900
    [row] = page.escalations
    assert row.sla.ack_due_at == row.created_at + timedelta(minutes=15)
    assert row.sla.resolve_due_at == row.created_at + timedelta(hours=24)
    assert not row.overdue

    server.clock.advance(14 * 60)
    self_harm = _flagged(alice, ["self_harm"])
    rows = sue.escalations().escalations
    # Neither overdue: the more severe first.
    assert [r.escalation_id for r in rows] == [self_harm, offensive]

    server.clock.advance(2 * 60)  # distress 16 min old, self_harm 2 min
    rows = sue.escalations().escalations
    assert [r.escalation_id for r in rows] == [offensive, self_harm]
    assert rows[0].overdue and rows[0].sla.ack_overdue and not rows[0].sla.resolve_overdue
    assert not rows[1].overdue

    sue.acknowledge(offensive)  # late, but acknowledged: no longer ack-overdue
    rows = sue.escalations().escalations
    assert [r.escalation_id for r in rows] == [self_harm, offensive]
    assert not any(r.overdue for r in rows)

    server.clock.advance(24 * 3600)
    by_id = {r.escalation_id: r for r in sue.escalations().escalations}
    assert by_id[offensive].sla.resolve_overdue and not by_id[offensive].sla.ack_overdue
    assert by_id[self_harm].sla.ack_overdue and by_id[self_harm].sla.resolve_overdue

    sue.resolve(offensive, "no_action_needed", "a film in the background")
    server.clock.advance(60)
    reopened = sue.reopen(offensive).escalation
    # The deadlines restart at the reopen.
    assert reopened.sla.ack_due_at == server.clock.now() + timedelta(minutes=15)
    assert not reopened.overdue
    server.clock.advance(16 * 60)
    assert sue.escalation(offensive).escalation.sla.ack_overdue


def test_cannot_judge_skips_enter_the_review_queue(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(2))
    first, second = alice.lease(count=2).leases
    alice.release(first.lease_id, ReleaseReason.CANNOT_JUDGE, "two voices, can't tell")
    alice.release(second.lease_id, ReleaseReason.SKIPPED)
    [row] = sue.escalations().escalations
    assert row.kind is EscalationKind.CANNOT_JUDGE and row.clip_id == first.clip.clip_id
    assert row.annotation_id is None and row.transcript is None
    assert row.note == "two voices, can't tell" and row.annotator == "alice"
    assert row.created_at == clocked_server.clock.now() and row.severity == 3
    audio = sue.escalation_audio(row.escalation_id)
    assert hashlib.sha256(audio).hexdigest() == first.clip.sha256
    sue.acknowledge(row.escalation_id)
    resolved = sue.resolve(row.escalation_id, "no_action_needed", "one voice is the TV")
    assert [a.action for a in resolved.audit] == ["play", "ack", "resolve"]


def test_audio_is_served_until_resolved_and_every_play_is_audited(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, sue, sam = people
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    receipt = alice.submit(annotation(lease, flags=["distress"], note="a scream"), key())
    eid = escalation_id(EscalationKind.FLAG, receipt.annotation_id)
    for who in (sue, sam, sue):
        assert hashlib.sha256(who.escalation_audio(eid)).hexdigest() == lease.clip.sha256
    plays = [(a.action, a.actor, a.to_state) for a in sue.escalation(eid).audit]
    assert plays == [("play", "sue", "open"), ("play", "sam", "open"), ("play", "sue", "open")]
    sue.resolve(eid, "false_alarm", "a film")
    with pytest.raises(Gone) as e:
        sue.escalation_audio(eid)
    assert e.value.reason == "escalation_resolved"
    assert [a.action for a in sue.escalation(eid).audit].count("play") == 3
    sue.reopen(eid)
    assert sue.escalation_audio(eid)


def test_state_and_since_filters(clocked_server: ClockedServer, people, test_wavs) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(2))
    old = _flagged(alice, ["distress"])
    clocked_server.clock.advance(3600)
    since = clocked_server.clock.now()
    new = _flagged(alice, ["distress"])
    sue.acknowledge(new)
    assert [e.escalation_id for e in sue.escalations(since=since).escalations] == [new]
    assert [e.escalation_id for e in sue.escalations(state=EscalationState.OPEN).escalations] == [
        old
    ]
    both = sue.escalations(state=[EscalationState.OPEN, EscalationState.ACKNOWLEDGED])
    assert {e.escalation_id for e in both.escalations} == {old, new}
    assert sue.escalations(state=EscalationState.RESOLVED).escalations == []
    one = sue.escalations(limit=1)
    assert len(one.escalations) == 1 and one.truncated


def test_two_supervisors_at_once_move_it_once(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, _, _ = people
    clocked_server.ingest(test_wavs(1))
    eid = _flagged(alice, ["distress"])
    sups = [
        QueueClient(clocked_server.url, clocked_server.token(f"s{i}", "supervisor"))
        for i in range(6)
    ]
    barrier = threading.Barrier(len(sups))
    outcomes: list[str] = []

    def ack(c: QueueClient) -> None:
        barrier.wait()
        try:
            c.acknowledge(eid)
            outcomes.append("ok")
        except Conflict as e:
            outcomes.append(e.reason)

    threads = [threading.Thread(target=ack, args=(c,)) for c in sups]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {"already_acknowledged", "changed_meanwhile"}
    assert [a.action for a in sups[0].escalation(eid).audit] == ["ack"]


def test_the_audit_table_refuses_updates_and_deletes(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(1))
    eid = _flagged(alice, ["distress"])
    sue.acknowledge(eid)
    repo = clocked_server.repo
    for sql in (
        "UPDATE escalation_events SET actor = 'nobody'",
        "DELETE FROM escalation_events",
    ):
        with pytest.raises(Exception, match="append-only"), repo._write() as conn:
            repo._x(conn, sql)
    assert [a.actor for a in sue.escalation(eid).audit] == ["sue"]


class _Poller:
    """A long-poll on a thread: what it got back and when (asserted by the test's thread)."""

    def __init__(self, client: QueueClient, cursor: str, wait: float = 10) -> None:
        self.page: EscalationPage | None = None
        self.answered_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(client, cursor, wait))
        self._thread.start()
        time.sleep(0.4)  # it is waiting on the server now

    def _run(self, client: QueueClient, cursor: str, wait: float) -> None:
        self.page = client.escalations(cursor=cursor, wait=wait)
        self.answered_at = time.monotonic()

    def result(self) -> tuple[EscalationPage, float]:
        self._thread.join(timeout=15)
        assert self.page is not None, "the long-poll never answered"
        return self.page, self.answered_at


def test_the_long_poll_waits_then_answers_news_at_once(
    clocked_server: ClockedServer, people, test_wavs
) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(1))
    page = sue.escalations()
    started = time.monotonic()
    same = sue.escalations(cursor=page.cursor, wait=0.6)
    assert time.monotonic() - started >= 0.55 and same.cursor == page.cursor

    poller = _Poller(sue, page.cursor)
    eid = _flagged(alice, ["distress"])
    sent = time.monotonic()
    news, answered = poller.result()
    assert answered - sent < 2.0
    assert [e.escalation_id for e in news.escalations] == [eid] and news.cursor != page.cursor


def test_escalations_reach_a_long_poll_on_another_server_process(
    tmp_path: Path, new_db_url: Callable[[Path], str], test_wavs
) -> None:
    """Two `serve` processes on one database: the supervisor long-polls the first; an escalation
    submitted online (POST /v1/annotations) and one submitted offline then synced (the batch
    route the sync engine uses) through the second each appear within 2 s."""
    url = new_db_url(tmp_path / "db")
    first: LiveServer = start_live_server(tmp_path / "a", db_url=url)
    second: LiveServer | None = None
    try:
        second = start_live_server(tmp_path / "b", db_url=url)
        first.ingest(test_wavs(2))
        watcher = QueueClient(first.url, first.supervisor_token)
        ann = QueueClient(second.url, second.annotator_token)
        online, offline = ann.lease(count=2).leases

        poller = _Poller(watcher, watcher.escalations().cursor)
        ann.submit(annotation(online, flags=["distress"], note="shouting"), key())
        sent = time.monotonic()
        page, answered = poller.result()
        assert answered - sent < 2.0
        assert [e.note for e in page.escalations] == ["shouting"]

        poller = _Poller(watcher, page.cursor)
        item = annotation(offline, flags=["self_harm"], note="quietly said")
        [result] = ann.submit_batch([BatchItem(idempotency_key=key(), annotation=item)]).results
        sent = time.monotonic()
        assert result.status_code == 201
        page, answered = poller.result()
        assert answered - sent < 2.0
        assert [e.note for e in page.escalations] == ["quietly said", "shouting"]
    finally:
        if second is not None:
            second.stop()
        first.stop()


@pytest.mark.parametrize("note", ["\x1b]0;pwned\x07", "a\u202eb", "zero\u200bwidth"])
def test_supervisors_notes_refuse_terminal_tricks(
    clocked_server: ClockedServer, people, test_wavs, note: str
) -> None:
    alice, sue, _ = people
    clocked_server.ingest(test_wavs(1))
    eid = _flagged(alice, ["distress"])
    # The server refuses it...
    with clocked_server.client(clocked_server.tokens[SUE]) as raw:  # type: ignore[attr-defined]
        for path, body in (
            ("ack", {"note": note}),
            ("resolve", {"outcome": OUTCOME, "note": note}),
            ("reopen", {"note": note}),
        ):
            r = raw.post(f"/v1/escalations/{eid}/{path}", json=body)
            assert r.status_code == 422 and r.json()["field"] == "note", (path, r.text)
    # ...and the client refuses it the same way before sending.
    for act in (
        lambda: sue.acknowledge(eid, note),
        lambda: sue.resolve(eid, OUTCOME, note),
        lambda: sue.reopen(eid, note),
    ):
        with pytest.raises(RequestRejected) as e:
            act()
        assert e.value.status_code == 422 and e.value.error.field == "note"
    assert sue.escalation(eid).audit == []


def test_serve_sets_the_service_levels(
    make_live_server: Callable[..., LiveServer], test_wavs
) -> None:
    server = make_live_server(
        "--escalation-ack-minutes", "5", "--escalation-resolve-minutes", "120"
    )
    page = QueueClient(server.url, server.supervisor_token).escalations()
    assert (page.service_levels.ack_seconds, page.service_levels.resolve_seconds) == (300, 7200)
