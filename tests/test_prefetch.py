"""The prefetch queue against the real server: fill, broken audio, release on close, renewal."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import annotator.prefetch as prefetch_module
from annotator.prefetch import Prefetcher, PrefetchState, ReadyClip, prepare_clip
from api.client import Gone, NotFound, QueueClient, RequestRejected
from api.models import Clip, Lease, LeaseState
from tests.fixtures.server import LiveServer


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


class CountingClient(QueueClient):
    renewals: list[str]
    releases: list[tuple[str, str]]

    def renew(self, lease_id: str, ttl_seconds: int | None = None) -> LeaseState:
        state = super().renew(lease_id, ttl_seconds)
        self.renewals.append(lease_id)
        return state

    def release(self, lease_id: str, reason: object, detail: str | None = None) -> None:
        super().release(lease_id, reason, detail)  # type: ignore[arg-type]
        self.releases.append((lease_id, str(reason)))


def counting_factory(server: LiveServer) -> tuple[Callable[[], QueueClient], CountingClient]:
    renewals: list[str] = []
    releases: list[tuple[str, str]] = []
    made: list[CountingClient] = []

    def factory() -> QueueClient:
        client = CountingClient(server.url, server.annotator_token)
        client.renewals, client.releases = renewals, releases
        made.append(client)
        return client

    probe = CountingClient(server.url, server.annotator_token)
    probe.renewals, probe.releases = renewals, releases
    probe.close()
    return factory, probe


@pytest.fixture
def queued(live_server: LiveServer, test_wavs: Callable[..., list[Path]]) -> LiveServer:
    live_server.ingest(test_wavs(6))
    return live_server


def test_fills_to_depth_and_keeps_it(queued: LiveServer) -> None:
    factory, _ = counting_factory(queued)
    p = Prefetcher(factory, depth=3)
    p.start()
    try:
        wait_for(lambda: p.status.ready == 3)
        clip = p.take()
        assert clip is not None and clip.audio is not None and clip.error is None
        assert clip.audio.duration_s == pytest.approx(0.5, abs=0.01)
        assert len(clip.envelope) == prefetch_module.ENVELOPE_BUCKETS
        wait_for(lambda: p.status.ready == 3)  # refilled behind the taken one
        assert p.status.state is PrefetchState.OK
    finally:
        p.close()


def test_prefetch_off_fetches_on_request(queued: LiveServer) -> None:
    factory, _ = counting_factory(queued)
    p = Prefetcher(factory, depth=0)
    p.start()
    try:
        time.sleep(0.3)
        assert p.status.ready == 0
        p.request()
        wait_for(lambda: p.status.ready == 1)
        assert p.take() is not None
        time.sleep(0.3)
        assert p.status.ready == 0
    finally:
        p.close()


def test_empty_queue_reports_empty(live_server: LiveServer) -> None:
    factory, _ = counting_factory(live_server)
    changes: list[int] = []
    p = Prefetcher(factory, depth=3, on_change=lambda: changes.append(1))
    p.start()
    try:
        wait_for(lambda: p.status.state is PrefetchState.EMPTY)
        assert changes
    finally:
        p.close()


def test_checksum_mismatch_is_delivered_as_an_error_clip(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    (path,) = test_wavs(1)
    live_server.ingest([path])
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = live_server.data_dir / "audio" / sha[:2] / sha
    assert stored.exists()
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0xFF  # damaged at rest: the bytes served no longer match the announced sha256
    stored.write_bytes(bytes(data))
    factory, _ = counting_factory(live_server)
    p = Prefetcher(factory, depth=1)
    p.start()
    try:
        wait_for(lambda: p.status.ready == 1)
        clip = p.take()
        assert clip is not None
        assert clip.audio is None
        assert clip.error is not None and "sha256" in clip.error
    finally:
        p.close()


def _lease_for(data: bytes) -> Lease:
    return Lease(
        lease_id="lease-x",
        fence=1,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        clip=Clip(
            clip_id="clip-x",
            duration_s=1.0,
            sample_rate=16000,
            channels=1,
            locale="en-US",
            sha256=hashlib.sha256(data).hexdigest(),
        ),
    )


def test_undecodable_audio_is_delivered_as_an_error_clip() -> None:
    data = b"RIFF\x00\x00\x00\x00WAVEnot really a wav file at all"
    clip: ReadyClip = prepare_clip(_lease_for(data), data)
    assert clip.audio is None
    assert clip.error is not None and "decode" in clip.error


def test_close_releases_unused_leases(queued: LiveServer) -> None:
    factory, probe = counting_factory(queued)
    p = Prefetcher(factory, depth=3)
    p.start()
    wait_for(lambda: p.status.ready == 3)
    shown = p.take()
    assert shown is not None
    wait_for(lambda: p.status.ready == 3)
    p.close(release_unused=True)
    assert len(probe.releases) == 3
    assert all(reason == "unused" for _, reason in probe.releases)
    assert shown.lease_id not in {lease_id for lease_id, _ in probe.releases}
    with QueueClient(queued.url, queued.annotator_token) as client:
        for lease_id, _ in probe.releases:
            with pytest.raises((Gone, NotFound, RequestRejected)):
                client.audio(lease_id)
        # The clip on screen is still ours.
        assert client.audio(shown.lease_id)


def test_release_in_background(queued: LiveServer) -> None:
    factory, probe = counting_factory(queued)
    p = Prefetcher(factory, depth=1)
    p.start()
    try:
        wait_for(lambda: p.status.ready == 1)
        clip = p.take()
        assert clip is not None
        from api.models import ReleaseReason

        p.release(clip.lease_id, ReleaseReason.BROKEN_AUDIO)
        wait_for(lambda: (clip.lease_id, "broken_audio") in probe.releases)
    finally:
        p.close()


def test_leases_are_renewed_before_they_expire(
    queued: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renew at 2% of a 30 s lease (0.6 s) instead of half of it, so the test does not sleep 15 s.
    monkeypatch.setattr(prefetch_module, "RENEW_AT_FRACTION", 0.02)
    factory, probe = counting_factory(queued)
    p = Prefetcher(factory, depth=2, ttl_seconds=30)
    p.start()
    try:
        wait_for(lambda: p.status.ready == 2)
        in_use = p.take()
        assert in_use is not None
        # Both the waiting clips and the one on screen are renewed.
        wait_for(lambda: in_use.lease_id in probe.renewals, timeout=10)
        wait_for(lambda: len(set(probe.renewals)) >= 3, timeout=10)
        p.finish(in_use.lease_id)
        count = probe.renewals.count(in_use.lease_id)
        time.sleep(1.5)
        assert probe.renewals.count(in_use.lease_id) == count  # finished: no longer renewed
    finally:
        p.close()


def test_adopted_leases_play_from_local_audio_with_the_server_gone(queued: LiveServer) -> None:
    """Offline checkout / crash recovery: held leases whose audio is on disk need no network."""
    with QueueClient(queued.url, queued.annotator_token) as client:
        leases = client.lease(count=2, ttl_seconds=600).leases
        audio = {lease.clip.clip_id: client.audio(lease.lease_id) for lease in leases}
    url = queued.url
    queued.stop()
    p = Prefetcher(
        lambda: QueueClient(url, queued.annotator_token, timeout=0.5),
        depth=1,
        local_audio=audio.get,
    )
    p.adopt(leases)
    p.start()
    try:
        wait_for(lambda: p.status.ready == 1)
        first = p.take()
        assert first is not None and first.lease_id == leases[0].lease_id
        assert first.audio is not None
        wait_for(lambda: p.status.ready == 1)  # only as many as wanted are decoded at once
        second = p.take()
        assert second is not None and second.lease_id == leases[1].lease_id
        wait_for(lambda: p.status.state is PrefetchState.OFFLINE)
    finally:
        p.close(release_unused=False)
