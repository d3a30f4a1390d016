"""Expiry, fencing, late submissions, K annotations, amend window: time comes from a FakeClock, so
nothing sleeps. The app runs on a real loopback socket (uvicorn on a thread)."""

from __future__ import annotations

import pytest

from api.client import Conflict, Gone, NotFound, QueueClient, new_idempotency_key
from api.models import AnnotationPatch, AnnotationStatus
from tests.fixtures.server import ClockedServer
from tests.server.helpers import annotation


@pytest.fixture
def two(clocked_server: ClockedServer) -> tuple[QueueClient, QueueClient]:
    a = QueueClient(clocked_server.url, clocked_server.token("alice"))
    b = QueueClient(clocked_server.url, clocked_server.token("bob"))
    return a, b


def test_expired_lease_returns_the_clip_with_a_bigger_fence(
    clocked_server: ClockedServer, two: tuple[QueueClient, QueueClient], test_wavs
) -> None:
    alice, bob = two
    clocked_server.ingest(test_wavs(1))
    first = alice.lease(ttl_seconds=60).leases[0]
    assert bob.lease().leases == []
    clocked_server.clock.advance(59)
    assert bob.lease().leases == []
    clocked_server.clock.advance(2)
    second = bob.lease().leases[0]
    assert second.clip.clip_id == first.clip.clip_id
    assert second.fence == first.fence + 1


def test_expired_lease_refuses_audio_and_renewal(
    clocked_server: ClockedServer, two: tuple[QueueClient, QueueClient], test_wavs
) -> None:
    alice, _ = two
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease(ttl_seconds=60).leases[0]
    assert alice.audio(lease.lease_id)
    clocked_server.clock.advance(61)
    with pytest.raises(Gone) as e:
        alice.audio(lease.lease_id)
    assert e.value.reason == "lease_expired"
    with pytest.raises(Gone):
        alice.renew(lease.lease_id)


def test_ttl_is_capped_and_defaulted(clocked_server: ClockedServer, two, test_wavs) -> None:
    alice, _ = two
    clocked_server.ingest(test_wavs(2))
    now = clocked_server.clock.now()
    default, long = (
        alice.lease(count=1).leases[0],
        alice.lease(count=1, ttl_seconds=8 * 3600).leases[0],
    )
    assert (default.expires_at - now).total_seconds() == pytest.approx(300)
    assert (long.expires_at - now).total_seconds() == pytest.approx(8 * 3600)


def test_late_submission_is_accepted_when_nobody_completed_the_clip(
    clocked_server: ClockedServer, two, test_wavs
) -> None:
    alice, _ = two
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease(ttl_seconds=60).leases[0]
    clocked_server.clock.advance(3600)
    receipt = alice.submit(annotation(lease), new_idempotency_key())
    assert receipt.status is AnnotationStatus.LATE
    assert alice.lease().leases == []  # the clip is complete (K=1)


def test_completed_by_other_after_expiry(clocked_server: ClockedServer, two, test_wavs) -> None:
    alice, bob = two
    clocked_server.ingest(test_wavs(1))
    old = alice.lease(ttl_seconds=60).leases[0]
    clocked_server.clock.advance(61)
    new = bob.lease().leases[0]
    assert bob.submit(annotation(new), new_idempotency_key()).status is AnnotationStatus.ACCEPTED
    with pytest.raises(Conflict) as e:
        alice.submit(annotation(old), new_idempotency_key())
    assert e.value.reason == "completed_by_other"


def test_stale_fence_while_someone_else_holds_the_clip(
    clocked_server: ClockedServer, two, test_wavs
) -> None:
    alice, bob = two
    clocked_server.ingest(test_wavs(1))
    old = alice.lease(ttl_seconds=60).leases[0]
    clocked_server.clock.advance(61)
    new = bob.lease().leases[0]
    with pytest.raises(Conflict) as e:
        alice.submit(annotation(old), new_idempotency_key())
    assert e.value.reason == "stale_fence"
    # Bob's work is not made redundant: his submission is accepted.
    assert bob.submit(annotation(new), new_idempotency_key()).status is AnnotationStatus.ACCEPTED


def test_a_fence_that_is_not_the_lease_s_is_stale(
    clocked_server: ClockedServer, two, test_wavs
) -> None:
    alice, _ = two
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    with pytest.raises(Conflict) as e:
        alice.submit(annotation(lease, fence=lease.fence + 1), new_idempotency_key())
    assert e.value.reason == "stale_fence"
    assert e.value.error.field == "fence"


def test_k_annotations_from_distinct_annotators(make_clocked_server, test_wavs) -> None:
    server: ClockedServer = make_clocked_server(annotations_per_clip=2)
    alice = QueueClient(server.url, server.token("alice"))
    bob = QueueClient(server.url, server.token("bob"))
    carol = QueueClient(server.url, server.token("carol"))
    server.ingest(test_wavs(1))
    a = alice.lease().leases[0]
    assert bob.lease().leases == []  # one annotator at a time
    alice.submit(annotation(a), new_idempotency_key())
    assert alice.lease().leases == []  # never twice from the same annotator
    b = bob.lease().leases[0]
    assert b.clip.clip_id == a.clip.clip_id and b.fence == a.fence + 1
    bob.submit(annotation(b, transcript="wake me at seven"), new_idempotency_key())
    assert carol.lease().leases == []  # K reached


def test_amend_within_the_window_only_by_the_author(
    clocked_server: ClockedServer, two, test_wavs
) -> None:
    alice, bob = two
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    receipt = alice.submit(annotation(lease), new_idempotency_key())
    clocked_server.clock.advance(899)
    amended = alice.amend(receipt.annotation_id, AnnotationPatch(intent="alarm_query"))
    assert amended.intent == "alarm_query"
    assert amended.transcript == "wake me up at seven"  # omitted fields stay
    assert amended.amended_at is not None
    with pytest.raises(NotFound) as e:  # someone else's annotation: as if it did not exist
        bob.amend(receipt.annotation_id, AnnotationPatch(intent="alarm_remove"))
    assert e.value.reason == "annotation_not_found"
    clocked_server.clock.advance(2)
    with pytest.raises(Conflict) as e2:
        alice.amend(receipt.annotation_id, AnnotationPatch(intent="alarm_remove"))
    assert e2.value.reason == "amend_window_closed"


def test_stats_from_active_seconds_and_gaps(clocked_server: ClockedServer, two, test_wavs) -> None:
    alice, _ = two
    clocked_server.ingest(test_wavs(4))
    leases = alice.lease(count=4).leases
    for i, lease in enumerate(leases):
        timings = {"active_seconds": 12.0} if i == 0 else None
        alice.submit(annotation(lease, timings=timings), new_idempotency_key())
        clocked_server.clock.advance(20)
    stats = alice.my_stats()
    assert stats.today == 4
    # 12 s measured; then gaps of 20 s between consecutive submissions
    assert stats.median_seconds == pytest.approx(20.0)
    # first annotation 80 s ago, but the denominator is at least 15 minutes
    assert stats.clips_per_hour == pytest.approx(16.0)
    clocked_server.clock.advance(24 * 3600)
    later = alice.my_stats()
    assert later.today == 0 and later.total == 4 and later.median_seconds is None


def test_an_amendment_never_takes_an_escalation_off_the_list(
    clocked_server: ClockedServer, two, test_wavs
) -> None:
    alice, _ = two
    supervisor = QueueClient(clocked_server.url, clocked_server.token("sue", "supervisor"))
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    receipt = alice.submit(
        annotation(lease, flags=["self_harm"], note="says they want to end it"),
        new_idempotency_key(),
    )
    # Finding 8: the amend that tried to erase the escalation is refused (test_amendment_history);
    # one that changes other fields keeps it on the list with its flags and note.
    alice.amend(receipt.annotation_id, AnnotationPatch(transcript="i want to end it"))
    listed = supervisor.escalations().escalations
    assert [x.annotation_id for x in listed] == [receipt.annotation_id]
    assert listed[0].flags == ["self_harm"] and listed[0].note == "says they want to end it"
