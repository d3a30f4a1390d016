"""The annotator's loop against a real `annotator serve`: lease, audio, submit, stats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from api.client import Conflict, Gone, QueueClient, new_idempotency_key
from api.models import AnnotationStatus, ReleaseReason
from tests.fixtures.server import LiveServer
from tests.server.helpers import annotation


@pytest.fixture
def ann(live_server: LiveServer) -> QueueClient:
    return QueueClient(live_server.url, live_server.annotator_token)


def test_health_needs_no_token(live_server: LiveServer) -> None:
    health = QueueClient(live_server.url, "not-a-token").health()
    assert health.status == "ok"
    assert health.time.tzinfo is not None


def test_taxonomy_is_the_shipped_default(ann: QueueClient) -> None:
    taxonomy = ann.taxonomy()
    assert len(taxonomy.intents) == 62
    assert {f.id for f in taxonomy.flags if f.escalation} == {"distress", "self_harm"}
    assert "[noise]" in {t.tag for t in taxonomy.tags}


def test_empty_queue_answers_an_empty_list(ann: QueueClient) -> None:
    assert ann.lease(count=5).leases == []


def test_full_cycle_lease_audio_submit(
    live_server: LiveServer, ann: QueueClient, test_wavs
) -> None:
    files = test_wavs(2)
    clip_ids = live_server.ingest(files)
    leases = ann.lease(count=5).leases
    assert [lease.clip.clip_id for lease in leases] == clip_ids  # queue order, all of them
    first = leases[0]
    assert first.fence == 1
    assert first.clip.sample_rate == 16_000 and first.clip.channels == 1
    assert first.clip.duration_s == pytest.approx(0.5, abs=0.01)
    assert first.clip.locale == "en-US"

    audio = ann.audio(first.lease_id)
    assert audio == Path(files[0]).read_bytes()
    assert hashlib.sha256(audio).hexdigest() == first.clip.sha256

    receipt = ann.submit(annotation(first), new_idempotency_key())
    assert receipt.status is AnnotationStatus.ACCEPTED
    assert receipt.clip_id == first.clip.clip_id
    assert receipt.amend_until is not None

    # Submitted: the lease is spent, its audio is no longer served.
    with pytest.raises(Gone) as e:
        ann.audio(first.lease_id)
    assert e.value.reason == "lease_released"

    stats = ann.my_stats()
    assert stats.today == 1 and stats.total == 1
    assert stats.clips_per_hour > 0


def test_audio_is_served_with_its_media_type(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    with live_server.client(live_server.annotator_token) as http:
        lease = http.post("/v1/leases", json={"count": 1}).json()["leases"][0]
        r = http.get(f"/v1/leases/{lease['lease_id']}/audio")
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["cache-control"] == "no-store"
    assert int(r.headers["content-length"]) == len(r.content)


def test_one_annotator_never_gets_a_leased_clip_again(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(3))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    other = QueueClient(live_server.url, live_server.new_token("ann2"))
    mine = {lease.clip.clip_id for lease in ann.lease(count=2).leases}
    theirs = {lease.clip.clip_id for lease in other.lease(count=5).leases}
    assert len(mine) == 2 and len(theirs) == 1
    assert not mine & theirs


def test_release_returns_the_clip_to_others_but_a_skip_is_not_offered_back(
    live_server: LiveServer, test_wavs
) -> None:
    live_server.ingest(test_wavs(1))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    other = QueueClient(live_server.url, live_server.new_token("ann2"))
    lease = ann.lease().leases[0]
    assert other.lease().leases == []
    ann.release(lease.lease_id, ReleaseReason.SKIPPED, "dog barking only")
    ann.release(lease.lease_id, ReleaseReason.SKIPPED)  # a retried release is harmless
    assert ann.lease().leases == []  # skipped: not offered to the same person again
    again = other.lease().leases[0]
    assert again.clip.clip_id == lease.clip.clip_id
    assert again.fence == lease.fence + 1


def test_unused_release_offers_the_clip_again(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    lease = ann.lease().leases[0]
    ann.release(lease.lease_id, ReleaseReason.UNUSED)
    assert ann.lease().leases[0].clip.clip_id == lease.clip.clip_id


def test_renew_extends_a_live_lease(live_server: LiveServer, ann: QueueClient, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    lease = ann.lease(ttl_seconds=60).leases[0]
    state = ann.renew(lease.lease_id, ttl_seconds=600)
    assert state.fence == lease.fence
    assert state.expires_at > lease.expires_at


def test_second_submission_of_a_clip_by_its_author_conflicts(
    live_server: LiveServer, ann: QueueClient, test_wavs
) -> None:
    live_server.ingest(test_wavs(1))
    lease = ann.lease().leases[0]
    ann.submit(annotation(lease), new_idempotency_key())
    with pytest.raises(Conflict) as e:
        ann.submit(annotation(lease, transcript="something else"), new_idempotency_key())
    assert e.value.reason == "already_annotated"


def test_restart_keeps_the_queue(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(2))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    lease = ann.lease().leases[0]
    receipt = ann.submit(annotation(lease), "restart-key-1")
    live_server.stop()
    live_server.start()
    ann = QueueClient(live_server.url, live_server.annotator_token)
    assert ann.submit(annotation(lease), "restart-key-1") == receipt  # the receipt survived
    remaining = ann.lease(count=5).leases
    assert len(remaining) == 1 and remaining[0].clip.clip_id != lease.clip.clip_id
