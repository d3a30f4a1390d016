"""Issue 10 finding 10: retention of clip audio on the server, both backends.

Accidental activations (every needed annotation says `not_device_directed`) lose their audio as
soon as the last annotation is in; `serve --retain-audio-days N` deletes the rest N days after
ingest (a periodic sweep, time from the injectable clock). A deleted clip leaves the queue, its
audio route answers 410 `audio_deleted`, and the export marks it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from api.client import Gone, QueueClient, new_idempotency_key
from api.server.audio_store import AudioMissing
from api.server.export import export_lines
from tests.fixtures.server import ClockedServer, LiveServer, open_repo
from tests.server.helpers import annotation


def _sha(server: ClockedServer, clip_id: str) -> str:
    with server.repo._read() as conn:
        return str(
            server.repo._one(conn, "SELECT sha256 FROM clips WHERE clip_id = ?", (clip_id,))[0]
        )


def _kept(repo, sha256: str) -> bool:
    try:
        repo.audio.read(sha256)
    except AudioMissing:
        return False
    return True


def _exported(repo) -> dict[str, dict]:
    return {(r := json.loads(line))["clip_id"]: r for line in export_lines(repo)}


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the retention sweep did not act in time")
        time.sleep(0.05)


def test_accidental_activations_lose_their_audio_once_every_annotation_is_in(
    make_clocked_server: Callable[..., ClockedServer], test_wavs
) -> None:
    server = make_clocked_server(annotations_per_clip=2)
    (accidental, real) = server.ingest(test_wavs(2))
    alice = QueueClient(server.url, server.token("alice"))
    bob = QueueClient(server.url, server.token("bob"))
    by_clip = {le.clip.clip_id: le for le in alice.lease(count=2).leases}
    alice.submit(
        annotation(by_clip[accidental], transcript="turn it up", intent="not_device_directed"),
        new_idempotency_key(),
    )
    alice.submit(
        annotation(by_clip[real], transcript="turn it up", intent="not_device_directed"),
        new_idempotency_key(),
    )
    # One of the two needed annotations is in: the audio stays for the second annotator.
    assert _kept(server.repo, _sha(server, accidental))
    leases = {le.clip.clip_id: le for le in bob.lease(count=2).leases}
    assert bob.audio(leases[accidental].lease_id)
    bob.submit(
        annotation(leases[accidental], transcript="turn it up", intent="not_device_directed"),
        new_idempotency_key(),
    )
    bob.submit(annotation(leases[real]), new_idempotency_key())  # bob heard a request
    assert not _kept(server.repo, _sha(server, accidental))
    assert _kept(server.repo, _sha(server, real))  # not every annotation said so
    exported = _exported(server.repo)
    assert exported[accidental]["audio_deleted_at"] is not None
    assert exported[real]["audio_deleted_at"] is None
    with server.repo._read() as conn:
        reason = server.repo._one(
            conn, "SELECT audio_deleted_reason FROM clips WHERE clip_id = ?", (accidental,)
        )[0]
    assert reason == "not_device_directed"


def test_retain_audio_days_deletes_the_rest_by_age_and_the_audio_route_answers_410(
    make_clocked_server: Callable[..., ClockedServer], test_wavs
) -> None:
    # 0.01 days = 864 s; the sweep runs every 50 ms of real time, on the server's fake clock.
    server = make_clocked_server(retain_audio_days=0.01, retention_sweep_s=0.05)
    server.clock.set(datetime.now(UTC))  # ingest stamps clips with real time
    done, held, waiting = server.ingest(test_wavs(3))
    alice = QueueClient(server.url, server.token("alice"))
    leases = {le.clip.clip_id: le for le in alice.lease(count=2, ttl_seconds=3600).leases}
    alice.submit(annotation(leases[done]), new_idempotency_key())
    assert alice.audio(leases[held].lease_id)
    time.sleep(0.3)  # several sweeps: nothing is old enough yet
    assert alice.audio(leases[held].lease_id)
    server.clock.advance(900)
    _wait_for(lambda: not _kept(server.repo, _sha(server, waiting)))
    _wait_for(lambda: not _kept(server.repo, _sha(server, held)))
    with pytest.raises(Gone) as e:
        alice.audio(leases[held].lease_id)  # the lease is live; its audio is gone
    assert e.value.reason == "audio_deleted"
    bob = QueueClient(server.url, server.token("bob"))
    assert bob.lease(count=3).leases == []  # deleted clips left the queue
    assert not _kept(server.repo, _sha(server, done))
    assert _exported(server.repo)[done]["audio_deleted_at"] is not None


def test_serve_flag_deletes_old_audio_at_start(
    make_live_server: Callable[..., LiveServer], test_wavs
) -> None:
    server = make_live_server("--retain-audio-days", "2")
    server.stop()
    old, fresh = server.ingest(test_wavs(2))
    repo = open_repo(server.db, server.data_dir)
    try:
        with repo._write() as conn:  # ingested three days ago
            repo._x(
                conn,
                "UPDATE clips SET created_at = created_at - 3 * 86400 WHERE clip_id = ?",
                (old,),
            )
        shas: dict[str, str] = {}
        with repo._read() as conn:
            for cid in (old, fresh):
                shas[cid] = repo._one(conn, "SELECT sha256 FROM clips WHERE clip_id = ?", (cid,))[0]
        server.start()
        _wait_for(lambda: not _kept(repo, shas[old]))
        assert _kept(repo, shas[fresh])
    finally:
        repo.close()
    with server.client(server.annotator_token) as http:
        got = http.post("/v1/leases", json={"count": 2}).json()["leases"]
    assert [le["clip"]["clip_id"] for le in got] == [fresh]
