"""Storage-level batching: `submit_many` (one durable transaction, a savepoint per item),
group commit of concurrent submits, and bulk ingest with `add_clips`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from api.models import AnnotationIn, AnnotationStatus, Role
from api.server import audio_store
from api.server.clock import FakeClock
from api.server.errors import Rejection
from api.server.group_commit import GroupCommitter
from api.server.records import NewClip
from api.server.repository import LeaseGrant, Principal, Submission, SubmitResult
from api.server.service import QueueService
from api.server.settings import ServerSettings
from api.server.sqlite_repo import SqliteRepository
from tests.fixtures.server import open_repo, sqlite_statements, wav_bytes
from tests.server.helpers import key


def _clip(i: int) -> NewClip:
    audio = wav_bytes(i, seconds=0.1)
    return NewClip(
        sha256=hashlib.sha256(audio).hexdigest(),
        audio=audio,
        media_type="audio/wav",
        duration_s=0.1,
        sample_rate=16_000,
        channels=1,
        locale="en-US",
        source_name=f"clip{i}.wav",
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[QueueService]:
    settings = ServerSettings(db_path=tmp_path / "q.db", data_dir=tmp_path / "data")
    repo = SqliteRepository(settings.db_path, settings.data_dir)
    try:
        yield QueueService(settings, FakeClock(), repo)
    finally:
        repo.close()


def _sub(service: QueueService, lease: LeaseGrant, k: str, **over: object) -> Submission:
    fields: dict[str, object] = {
        "lease_id": lease.lease_id,
        "fence": lease.fence,
        "transcript": "wake me up at seven",
        "intent": "alarm_set",
    }
    fields.update(over)
    return service.submission(k, AnnotationIn.model_validate(fields))


def _leases(service: QueueService, n: int, who: str = "ann") -> list[LeaseGrant]:
    service.repo.add_clips([_clip(i) for i in range(n)])
    return service.repo.claim(who, n, 300, service.clock.now())


def test_submit_many_is_one_durable_transaction_and_bad_items_fail_alone(
    service: QueueService,
) -> None:
    repo = service.repo
    assert isinstance(repo, SqliteRepository)
    leases = _leases(service, 3)
    k0, k1 = key(), key()
    items = [
        ("ann", _sub(service, leases[0], k0)),
        ("ann", _sub(service, leases[1], key(), fence=leases[1].fence + 7)),  # stale fence
        ("ann", _sub(service, leases[2], k1)),
        ("ann", _sub(service, leases[0], k0)),  # the same key and body again: a replay
        ("ann", _sub(service, leases[0], k0, transcript="other")),  # same key, other body
        ("someone", _sub(service, leases[2], key())),  # not their lease
    ]
    statements = sqlite_statements(repo)
    results = repo.submit_many(items, service.clock.now())
    sql = [s.strip().split()[0].upper() for s in statements]
    assert sql.count("COMMIT") == 1
    assert sql.count("BEGIN") == 1
    assert "PRAGMA synchronous = FULL" in statements  # durable: the WAL is fsynced at COMMIT

    first, stale, third, replay, mismatch, foreign = results
    assert isinstance(first, SubmitResult) and not first.replayed
    assert isinstance(stale, Rejection) and (stale.status_code, stale.reason) == (
        409,
        "stale_fence",
    )
    assert isinstance(third, SubmitResult)
    assert isinstance(replay, SubmitResult) and replay.replayed
    assert replay.annotation.annotation_id == first.annotation.annotation_id
    assert isinstance(mismatch, Rejection) and mismatch.reason == "idempotency_mismatch"
    # Someone else's lease is refused as if it did not exist (no existence oracle).
    assert isinstance(foreign, Rejection) and foreign.status_code == 404
    assert repo.count_annotations("ann") == 2
    # The refused item changed nothing: its lease is still live and can be submitted.
    again = repo.submit("ann", _sub(service, leases[1], key()), service.clock.now())
    assert again.annotation.status is AnnotationStatus.ACCEPTED


def test_submit_many_matches_one_by_one(tmp_path: Path, new_db_url) -> None:
    """The same items through submit_many and through submit give the same outcomes."""
    outcomes: list[list[tuple[str, object]]] = []
    for run in ("many", "one"):
        url = new_db_url(tmp_path / run)
        settings = ServerSettings(db_url=url, data_dir=tmp_path / run)
        repo = open_repo(url, settings.data_dir)
        service = QueueService(settings, FakeClock(), repo)
        try:
            leases = _leases(service, 2)
            ks = ["k" * 20, "j" * 20]
            items = [
                ("ann", _sub(service, leases[0], ks[0])),
                ("ann", _sub(service, leases[0], ks[1])),  # already annotated this clip
                ("ann", _sub(service, leases[1], ks[0])),  # key reused for another body
                ("ann", _sub(service, leases[1], ks[1], transcript="x")),
            ]
            if run == "many":
                got: Sequence[SubmitResult | Rejection] = repo.submit_many(items, FakeClock().now())
            else:
                got = []
                for who, s in items:
                    try:
                        got.append(repo.submit(who, s, FakeClock().now()))
                    except Rejection as r:
                        got.append(r)
            outcomes.append(
                [
                    ("ok", r.replayed) if isinstance(r, SubmitResult) else ("no", r.reason)
                    for r in got
                ]
            )
        finally:
            repo.close()
    assert outcomes[0] == outcomes[1]


def test_batch_endpoint_uses_one_transaction(service: QueueService) -> None:
    repo = service.repo
    assert isinstance(repo, SqliteRepository)
    leases = _leases(service, 4)
    raws: list[object] = [
        {
            "idempotency_key": key(),
            "annotation": {
                "lease_id": le.lease_id,
                "fence": le.fence,
                "transcript": "play some jazz",
                "intent": "play_music",
            },
        }
        for le in leases
    ]
    raws.insert(1, {"idempotency_key": key(), "annotation": {"lease_id": "x"}})  # bad shape
    raws.insert(2, {**raws[0], "annotation": {**raws[0]["annotation"], "intent": "nope"}})  # type: ignore[index, dict-item]
    statements = sqlite_statements(repo)
    results = service.submit_batch(Principal(name="ann", role=Role.ANNOTATOR), raws)
    assert [r.status_code for r in results] == [201, 422, 422, 201, 201, 201]
    assert results[2].error is not None and results[2].error.field == "intent"
    assert [s.split()[0].upper() for s in statements].count("COMMIT") == 1


class _FakeRepo:
    defers_sync = False

    def __init__(self, fail_group: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.alone: list[str] = []
        self.fail_group = fail_group

    def submit_many(
        self, items: Sequence[tuple[str, Submission]], now: datetime, *, sync: bool = True
    ) -> list[SubmitResult | Rejection]:
        self.groups.append([s.idempotency_key for _, s in items])
        if self.fail_group:
            raise sqlite3.OperationalError("disk I/O error")
        return [self._result(s) for _, s in items]

    def submit(self, annotator: str, submission: Submission, now: datetime) -> SubmitResult:
        self.alone.append(submission.idempotency_key)
        result = self._result(submission)
        if isinstance(result, Rejection):
            raise result
        if submission.idempotency_key == "boom":
            raise RuntimeError("boom")
        return result

    @staticmethod
    def _result(s: Submission) -> SubmitResult | Rejection:
        if s.idempotency_key.startswith("bad"):
            return Rejection(409, "stale_fence", "stale")
        return SubmitResult(annotation=None, replayed=False)  # type: ignore[arg-type]


def _submission(k: str) -> Submission:
    return Submission(
        lease_id="l",
        fence=1,
        idempotency_key=k,
        request_hash="h",
        body_json="{}",
        content=None,  # type: ignore[arg-type]
        active_seconds=None,
        taxonomy_version="1",
    )


async def _gather(committer: GroupCommitter, keys: list[str]) -> list[object]:
    return await asyncio.gather(
        *(committer.submit("ann", _submission(k)) for k in keys), return_exceptions=True
    )


def test_group_commit_shares_one_transaction_and_isolates_refusals() -> None:
    repo = _FakeRepo()
    committer = GroupCommitter(repo, FakeClock())  # type: ignore[arg-type]
    results = asyncio.run(_gather(committer, ["a", "bad1", "b"]))
    assert repo.groups == [["a", "bad1", "b"]]
    assert isinstance(results[0], SubmitResult) and isinstance(results[2], SubmitResult)
    assert isinstance(results[1], Rejection) and results[1].reason == "stale_fence"
    # A later submission is a new group.
    asyncio.run(_gather(committer, ["c"]))
    assert repo.groups[-1] == ["c"]


def test_group_commit_retries_alone_when_the_group_fails() -> None:
    repo = _FakeRepo(fail_group=True)
    committer = GroupCommitter(repo, FakeClock())  # type: ignore[arg-type]
    results = asyncio.run(_gather(committer, ["a", "boom", "bad2"]))
    assert repo.alone == ["a", "boom", "bad2"]
    assert isinstance(results[0], SubmitResult)
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[2], Rejection)


@pytest.mark.parametrize("syncfs", [True, False])
def test_add_clips_stores_files_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    if not syncfs:
        monkeypatch.setattr(audio_store, "SYNCFS", None)
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    repo = SqliteRepository(tmp_path / "q.db", tmp_path / "data")
    try:
        assert repo.add_clip(_clip(0)) is not None
        fsyncs.clear()
        clips = [_clip(i) for i in range(7)]
        ids = repo.add_clips([*clips[:4], clips[2], *clips[4:]], batch=3)
        assert ids[0] is None  # already queued by add_clip
        assert ids[4] is None  # the same bytes earlier in this call
        fresh = [ids[1], ids[2], ids[3], ids[5], ids[6], ids[7]]
        assert all(fresh) and len(set(fresh)) == 6
        if syncfs:
            assert fsyncs == []  # one syncfs per step, no fsync per file
        else:
            assert len(fsyncs) >= 6
        for c in clips:
            path = repo.audio.path_for(c.sha256)
            assert path.read_bytes() == c.audio
            assert path.stat().st_mode & 0o777 == 0o600
        leftovers = [p for p in (tmp_path / "data").rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == []
        grants = repo.claim("ann", 10, 300, FakeClock().now())
        assert len(grants) == 7
        assert set(fresh) < {g.clip.clip_id for g in grants}
        assert repo.add_clips([]) == []
    finally:
        repo.close()


def test_clip_batcher_promises_ids_and_stores_them_at_flush(tmp_path: Path, new_db_url) -> None:
    url = new_db_url(tmp_path)
    repo = open_repo(url, tmp_path / "data")
    other = open_repo(url, tmp_path / "data")  # a concurrent ingest
    try:
        repo.add_clip(_clip(0))
        batcher = repo.batcher()
        assert batcher.add_clip(_clip(0)) is None  # already queued
        first = batcher.add_clip(_clip(1))
        assert first is not None
        assert batcher.add_clip(_clip(1)) is None  # held already
        raced = batcher.add_clip(_clip(2))
        assert raced is not None
        assert other.add_clip(_clip(2)) is not None  # queued meanwhile under another id
        assert len(repo.claim("ann", 10, 300, FakeClock().now())) == 2  # held ones not yet queued
        batcher.flush()
        assert batcher.lost_to_race == [raced]
        grants = repo.claim("bob", 10, 300, FakeClock().now())
        assert first in {g.clip.clip_id for g in grants}
        assert raced not in {g.clip.clip_id for g in grants}
        assert repo.audio.read(_clip(1).sha256) == _clip(1).audio
    finally:
        other.close()
        repo.close()
