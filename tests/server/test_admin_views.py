"""The admins' views (issue 11) on both backends: queue status by locale with leases per person,
people and their tokens (never a secret), throughput per person and hour on a FakeClock."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from api.client import QueueClient
from api.models import ReleaseReason, Role
from tests.fixtures.server import ClockedServer
from tests.server.helpers import annotation, key

SHIFT_START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_queue_status_counts_clips_by_state_and_locale(
    clocked_server: ClockedServer, test_wavs
) -> None:
    s = clocked_server
    s.ingest(test_wavs(4), locale="en-US")
    s.ingest(test_wavs(2, start=10), locale="de-DE")
    alice = QueueClient(s.url, s.token("alice"))
    bob = QueueClient(s.url, s.token("bob"))
    admin = QueueClient(s.url, s.token("root", Role.ADMIN))

    first, second, third = alice.lease(count=3).leases  # all en-US: ingest order
    alice.submit(annotation(first, flags=["distress"], note="crying"), key())
    alice.submit(annotation(second), key())
    alice.release(third.lease_id, ReleaseReason.CANNOT_JUDGE, "unclear")
    # In queue order: the clip alice could not judge, the last en-US one, the first de-DE one.
    bob.lease(count=3)

    status = admin.queue_status()
    assert status.at == s.clock.now()
    by_locale = {c.locale: c for c in status.by_locale}
    assert set(by_locale) == {"en-US", "de-DE"}
    en, de = by_locale["en-US"], by_locale["de-DE"]
    assert (en.done, en.leased, en.pending, en.escalated) == (2, 2, 0, 2)
    assert (de.done, de.leased, de.pending, de.escalated) == (0, 1, 1, 0)
    assert (status.done, status.leased, status.pending, status.escalated) == (2, 3, 1, 2)
    assert status.open_escalations == 2
    assert {p.annotator: p.live_leases for p in status.leases_per_person} == {"bob": 3}

    s.clock.advance(3600)  # every lease expired: back to pending
    later = admin.queue_status()
    assert (later.leased, later.pending, later.leases_per_person) == (0, 4, [])


def test_people_lists_tokens_without_secrets(clocked_server: ClockedServer, test_wavs) -> None:
    s = clocked_server
    s.ingest(test_wavs(2))
    alice_token = s.token("alice")
    alice = QueueClient(s.url, alice_token)
    old_token = s.token("carol")
    s.repo.revoke_tokens("carol")
    s.token("carol", Role.SUPERVISOR)
    admin_token = s.token("root", Role.ADMIN)
    admin = QueueClient(s.url, admin_token)
    alice.submit(annotation(alice.lease().leases[0]), key())
    alice.lease()

    with s.client(admin_token) as raw:
        body = raw.get("/v1/admin/people").content
    for secret in (alice_token, old_token, admin_token):
        assert secret.encode() not in body
        assert hashlib.sha256(secret.encode()).hexdigest().encode() not in body

    people = {p.name: p for p in admin.people().people}
    assert set(people) == {"alice", "carol", "root"}
    a = people["alice"]
    assert (a.roles, a.live_tokens, a.annotations, a.live_leases) == ([Role.ANNOTATOR], 1, 1, 1)
    assert a.last_annotation_at == s.clock.now()
    c = people["carol"]
    assert c.roles == [Role.SUPERVISOR] and c.live_tokens == 1 and len(c.tokens) == 2
    assert [t.revoked_at is not None for t in c.tokens] == [True, False]
    assert people["root"].annotations == 0 and people["root"].last_annotation_at is None


def test_throughput_per_person_and_hour(make_clocked_server, test_wavs) -> None:
    s: ClockedServer = make_clocked_server()
    s.clock.set(SHIFT_START)
    s.ingest(test_wavs(8))
    alice = QueueClient(s.url, s.token("alice"))
    bob = QueueClient(s.url, s.token("bob"))
    admin = QueueClient(s.url, s.token("root", Role.ADMIN))
    # 08:xx alice 2, bob 1; 09:xx nobody; 10:xx alice 1, bob 2
    plan = [(alice, 5), (alice, 10), (bob, 20), (alice, 125), (bob, 130), (bob, 140)]
    for who, minute in plan:
        s.clock.set(SHIFT_START + timedelta(minutes=minute))
        who.submit(annotation(who.lease().leases[0]), key())

    got = admin.throughput(since=SHIFT_START, hours=3)
    assert got.since == SHIFT_START
    assert got.hours == [SHIFT_START + timedelta(hours=h) for h in range(3)]
    per = {p.annotator: (p.clips_per_hour, p.total) for p in got.people}
    assert per == {"alice": ([2, 0, 1], 3), "bob": ([1, 0, 2], 3)}

    # Default: the last 12 hours, ending with the current one.
    s.clock.set(SHIFT_START + timedelta(hours=2, minutes=59))
    recent = admin.throughput()
    assert len(recent.hours) == 12 and recent.hours[-1] == SHIFT_START + timedelta(hours=2)
    assert {p.annotator: p.total for p in recent.people} == {"alice": 3, "bob": 3}
    # A start that is not an hour start begins its hour.
    late = admin.throughput(since=SHIFT_START + timedelta(hours=2, minutes=30), hours=1)
    assert late.since == SHIFT_START + timedelta(hours=2)
    assert {p.annotator: p.clips_per_hour for p in late.people} == {"alice": [1], "bob": [2]}
