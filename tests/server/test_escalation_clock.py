"""Service-level time on a FakeClock, both backends, real server over loopback (issue 11): a
deadline passing with no commit at all is news to a waiting long-poll, and an escalation raised
by an amendment dates its deadlines from that amendment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from api.client import QueueClient
from api.models import AnnotationPatch, EscalationKind, EscalationPage
from api.server.escalation_rules import escalation_id
from tests.fixtures.server import ClockedServer
from tests.server.helpers import annotation, key

ACK_S = 15 * 60


def _server(make: Callable[..., ClockedServer], test_wavs) -> tuple[ClockedServer, QueueClient]:
    server = make(escalation_ack_s=ACK_S, escalation_resolve_s=24 * 3600)
    server.ingest(test_wavs(3))
    return server, QueueClient(server.url, server.token("alice"))


def _flag(alice: QueueClient, flags: list[str]) -> str:
    receipt = alice.submit(annotation(alice.lease().leases[0], flags=flags, note="crying"), key())
    return escalation_id(EscalationKind.FLAG, receipt.annotation_id)


def _wait_in_thread(sue: QueueClient, cursor: str, wait: float) -> tuple[list, threading.Thread]:
    answer: list[tuple[EscalationPage, float]] = []

    def poll() -> None:
        page = sue.escalations(cursor=cursor, wait=wait)
        answer.append((page, time.monotonic()))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return answer, thread


def test_a_deadline_passing_wakes_the_long_poll_with_the_list_resorted(
    make_clocked_server, test_wavs
) -> None:
    server, alice = _server(make_clocked_server, test_wavs)
    sue = QueueClient(server.url, server.token("sue", "supervisor"))
    distress = _flag(alice, ["distress"])
    server.clock.advance(10 * 60)
    self_harm = _flag(alice, ["self_harm"])
    first = sue.escalations()
    assert [e.escalation_id for e in first.escalations] == [self_harm, distress]

    # Nothing changes: the long-poll waits out its time and says so with the same cursor.
    quiet = sue.escalations(cursor=first.cursor, wait=0.6)
    assert quiet.cursor == first.cursor and not any(e.overdue for e in quiet.escalations)

    answer, thread = _wait_in_thread(sue, first.cursor, wait=15)
    time.sleep(0.6)
    assert not answer, "answered before anything changed"
    server.clock.advance(5 * 60 + 1)  # distress's ack deadline passes; nobody commits anything
    moved = time.monotonic()
    thread.join(timeout=5)
    assert answer, "the long-poll did not wake when the deadline passed"
    page, at = answer[0]
    assert at - moved <= 2.0
    assert page.cursor != first.cursor
    assert [e.escalation_id for e in page.escalations] == [distress, self_harm]
    assert page.escalations[0].overdue and page.escalations[0].sla.ack_overdue

    # A console coming back late with the old cursor is answered at once, too.
    late = sue.escalations(cursor=first.cursor, wait=10)
    assert late.cursor == page.cursor
    # ...and with the new one it waits: the next deadline (self_harm's) is 10 minutes off.
    started = time.monotonic()
    again = sue.escalations(cursor=page.cursor, wait=0.6)
    assert again.cursor == page.cursor and time.monotonic() - started >= 0.5


def test_an_escalation_raised_by_an_amendment_dates_from_the_amendment(
    make_clocked_server, test_wavs
) -> None:
    server, alice = _server(make_clocked_server, test_wavs)
    sue = QueueClient(server.url, server.token("sue", "supervisor"))
    submitted = alice.submit(annotation(alice.lease().leases[0]), key())
    server.clock.advance(10 * 60)
    amended_at: datetime = server.clock.now()
    alice.amend(submitted.annotation_id, AnnotationPatch(flags=["distress"], note="I heard crying"))
    eid = escalation_id(EscalationKind.FLAG, submitted.annotation_id)
    # Amended again later (escalated already): the clock still dates from the first time.
    server.clock.advance(60)
    alice.amend(submitted.annotation_id, AnnotationPatch(note="I heard crying, twice"))

    [row] = sue.escalations().escalations
    assert row.escalation_id == eid
    assert row.created_at == amended_at
    assert row.sla.ack_due_at == amended_at + timedelta(seconds=ACK_S)
    assert sue.escalation(eid).escalation.created_at == amended_at
    # `since` filters on when it was raised: after the submission, at the amendment.
    assert [e.escalation_id for e in sue.escalations(since=amended_at).escalations] == [eid]
    assert sue.escalations(since=amended_at + timedelta(seconds=1)).escalations == []

    server.clock.advance(ACK_S - 2 * 60)  # 14 min after the amendment, 24 after submitting
    assert not sue.escalations().escalations[0].overdue
    server.clock.advance(2 * 60)
    assert sue.escalations().escalations[0].sla.ack_overdue

    # One escalated when submitted still dates from the submission.
    t0 = server.clock.now()
    flagged = _flag(alice, ["self_harm"])
    server.clock.advance(60)
    alice.amend(flagged.removeprefix("a_"), AnnotationPatch(note="crying, and more"))
    assert sue.escalation(flagged).escalation.created_at == t0
