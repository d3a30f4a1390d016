"""LocalStore: schema, durability settings, drafts, leases, the outbox and amendments."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from annotator.store import (
    AlreadySubmitted,
    AmendError,
    Draft,
    LocalStore,
    OutboxKind,
    OutboxState,
)
from annotator.store.schema import SCHEMA_VERSION
from api.models import AnnotationStatus, Receipt
from tests.store.conftest import make_annotation, make_lease


def _receipt(clip_id: str, n: int = 1) -> Receipt:
    return Receipt(
        annotation_id=f"ann{n}",
        clip_id=clip_id,
        status=AnnotationStatus.ACCEPTED,
        amend_until=datetime.now(UTC) + timedelta(minutes=15),
    )


def test_fresh_database_is_private_wal_full_and_migrated(store: LocalStore, home: Path) -> None:
    assert store.path == home / "data" / "local.db"
    assert store.path.parent.stat().st_mode & 0o777 == 0o700
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("user_version") == SCHEMA_VERSION
    assert store.recovered_from is None


def test_migrations_run_once_on_an_empty_file(home: Path) -> None:
    path = home / "data" / "x.db"
    path.parent.mkdir(parents=True)
    path.touch()  # an empty file is a valid, empty SQLite database
    with LocalStore.open(path) as s:
        assert s.pragma("user_version") == SCHEMA_VERSION
        s.remember_lease(make_lease(1))
    with LocalStore.open(path) as s:  # reopening must not re-run (and fail on) migration 1
        assert [le.lease_id for le in s.live_leases()] == ["lease0001"]
        assert s.recovered_from is None


def test_draft_round_trip_with_cursor(store: LocalStore) -> None:
    lease = make_lease(1)
    store.remember_lease(lease)
    d = Draft(
        lease_id=lease.lease_id,
        clip_id=lease.clip.clip_id,
        transcript="turn öff the [noise] lights",
        intent="iot_hue_lightoff",
        flags=("pii", "minor"),
        note="a child asks",
        cursor=(0, 9),
    )
    store.save_draft(d)
    got = store.load_draft(lease.lease_id)
    assert got is not None
    assert got.updated_at > 0
    assert (got.transcript, got.intent, got.flags, got.note, got.cursor) == (
        d.transcript,
        d.intent,
        d.flags,
        d.note,
        d.cursor,
    )
    store.save_draft(Draft(lease_id=lease.lease_id, clip_id=lease.clip.clip_id, transcript="x"))
    again = store.load_draft(lease.lease_id)
    assert again is not None and again.transcript == "x" and again.flags == ()
    store.delete_draft(lease.lease_id)
    assert store.load_draft(lease.lease_id) is None


def test_drafts_and_current_clip_survive_reopen(home: Path) -> None:
    lease = make_lease(7)
    with LocalStore.open() as s:
        s.remember_lease(lease)
        s.set_current(lease.lease_id)
        s.save_draft(Draft(lease.lease_id, lease.clip.clip_id, "half typed", cursor=(0, 4)))
    with LocalStore.open() as s:
        assert s.current_lease_id() == lease.lease_id
        d = s.load_draft(lease.lease_id)
        assert d is not None and d.transcript == "half typed" and d.cursor == (0, 4)


def test_live_leases_order_expiry_and_forget(store: LocalStore) -> None:
    for n in (3, 1, 2):
        store.remember_lease(make_lease(n))
    store.remember_lease(make_lease(9, ttl_s=-1))  # already expired
    assert [le.lease_id for le in store.live_leases()] == ["lease0003", "lease0001", "lease0002"]
    # Remembering a renewed lease updates it in place and keeps its position.
    store.remember_lease(make_lease(3, ttl_s=7200, fence=2))
    assert store.live_leases()[0].fence == 2
    assert store.forget_lease("lease0001") == "clip0001"
    assert [le.lease_id for le in store.live_leases()] == ["lease0003", "lease0002"]
    later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
    assert [le.lease_id for le in store.live_leases(later)] == ["lease0003"]


def test_sweep_expired_forgets_drafts_and_names_clips(store: LocalStore) -> None:
    old, live = make_lease(1, ttl_s=-5), make_lease(2)
    for le in (old, live):
        store.remember_lease(le)
        store.save_draft(Draft(le.lease_id, le.clip.clip_id, "words"))
    assert store.sweep_expired() == ["clip0001"]
    assert store.load_draft(old.lease_id) is None
    assert store.load_draft(live.lease_id) is not None
    assert store.sweep_expired() == []


def test_submit_is_one_transaction_and_moves_on(store: LocalStore) -> None:
    lease = make_lease(1)
    store.remember_lease(lease)
    store.set_current(lease.lease_id)
    store.save_draft(Draft(lease.lease_id, lease.clip.clip_id, "draft"))
    item = store.submit(make_annotation(lease), clip_id=lease.clip.clip_id)
    assert item.state is OutboxState.PENDING and item.attempts == 0 and len(item.key) == 32
    assert store.outbox_count() == 1
    assert store.load_draft(lease.lease_id) is None
    assert store.live_leases() == []
    assert store.current_lease_id() is None
    (h,) = store.history()
    assert h.key == item.key and h.state is OutboxState.PENDING and h.annotation_id is None
    assert [p.key for p in store.pending()] == [item.key]
    with pytest.raises(AlreadySubmitted):
        store.submit(make_annotation(lease, "again"), clip_id=lease.clip.clip_id)
    assert store.outbox_count() == 1


def test_submit_rolls_back_entirely_on_failure(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = make_lease(1)
    store.remember_lease(lease)
    store.save_draft(Draft(lease.lease_id, lease.clip.clip_id, "draft"))
    # A key that collides with an existing row makes the history insert fail mid-transaction.
    first = store.submit(make_annotation(make_lease(2)), clip_id="clip0002")
    monkeypatch.setattr("annotator.store.db.new_idempotency_key", lambda: first.key)
    with pytest.raises(sqlite3.IntegrityError):
        store.submit(make_annotation(lease), clip_id=lease.clip.clip_id)
    assert store.outbox_count() == 1
    assert store.load_draft(lease.lease_id) is not None
    assert [le.lease_id for le in store.live_leases()] == [lease.lease_id]


def test_claim_counts_attempts_and_ack_clears(store: LocalStore) -> None:
    items = [store.submit(make_annotation(make_lease(n)), clip_id=f"clip{n:04d}") for n in range(5)]
    claimed = store.claim_due(3)
    assert [c.key for c in claimed] == [i.key for i in items[:3]]
    assert all(c.attempts == 1 for c in claimed)
    later = time.time() + 60
    store.mark_retry_many([c.key for c in claimed], "offline", later)
    assert [p.key for p in store.pending()] == [i.key for i in items[3:]]
    assert store.next_due_at() is not None
    assert len(store.claim_due(10, force=True)) == 5  # an explicit sync ignores backoff
    clips = store.mark_sent_many([(i.key, _receipt(i.clip_id, n)) for n, i in enumerate(items)])
    assert clips == [i.clip_id for i in items]
    assert store.outbox_count() == 0
    assert store.next_due_at() is None
    assert {h.state for h in store.history()} == {OutboxState.SENT}
    assert store.history()[0].annotation_id == "ann4"


def test_rejected_is_kept_visible_and_blocks_purge_count(store: LocalStore) -> None:
    item = store.submit(make_annotation(make_lease(1)), clip_id="clip0001")
    store.mark_rejected(item.key, 422, "validation", "unknown intent")
    assert store.outbox_count() == 0
    (r,) = store.rejected()
    assert (r.status_code, r.reason, r.last_error) == (422, "validation", "unknown intent")
    assert store.history()[0].state is OutboxState.REJECTED
    assert store.unsynced_count() == 1


def test_conflict_moves_to_conflicts_and_exports(store: LocalStore, tmp_path: Path) -> None:
    lease = make_lease(1)
    item = store.submit(make_annotation(lease, "play jazz"), clip_id="clip0001")
    store.mark_conflict(item.key, "completed_by_other", "someone else finished it")
    assert store.outbox_count() == 0
    (c,) = store.conflicts()
    assert (c.key, c.reason, c.annotation.transcript) == (
        item.key,
        "completed_by_other",
        "play jazz",
    )
    out = tmp_path / "conflicts.jsonl"
    assert store.export_conflicts_jsonl(out) == 1
    assert out.stat().st_mode & 0o777 == 0o600
    (line,) = out.read_text().splitlines()
    rec = json.loads(line)
    assert rec["idempotency_key"] == item.key and rec["annotation"]["transcript"] == "play jazz"
    assert store.unsynced_count() == 1


def test_amend_before_any_attempt_replaces_body_under_same_key(store: LocalStore) -> None:
    lease = make_lease(1)
    item = store.submit(make_annotation(lease, "first"), clip_id="clip0001")
    assert store.amend(item.key, make_annotation(lease, "second")) == item.key
    (p,) = store.pending()
    assert p.annotation().transcript == "second" and p.kind is OutboxKind.SUBMIT
    assert store.history()[0].annotation.transcript == "second"


def test_amend_after_an_attempt_queues_a_patch_sent_after_the_ack(store: LocalStore) -> None:
    lease = make_lease(1)
    item = store.submit(make_annotation(lease, "first"), clip_id="clip0001")
    store.claim_due(10)  # an attempt may have reached the server: the body is frozen
    amend_key = store.amend(item.key, make_annotation(lease, "second"))
    assert amend_key != item.key
    assert store.pending()[0].annotation().transcript == "first"
    # Not sendable before the annotation id is known.
    assert store.claim_due(10, kind=OutboxKind.AMEND, force=True) == []
    # A second amendment before the first left replaces it rather than queueing two.
    assert store.amend(item.key, make_annotation(lease, "third")) == amend_key
    store.mark_sent(item.key, _receipt("clip0001"))
    (a,) = store.claim_due(10, kind=OutboxKind.AMEND)
    assert a.annotation_id == "ann1" and json.loads(a.body_json)["transcript"] == "third"
    h = store.history()[0]
    assert h.amend_pending and h.annotation.transcript == "third"
    store.mark_amend_sent(a.key, datetime.now(UTC) + timedelta(minutes=15))
    assert not store.history()[0].amend_pending
    assert store.outbox_count() == 0


def test_amend_refused_for_conflicts_and_unknown_keys(store: LocalStore) -> None:
    lease = make_lease(1)
    other = store.submit(make_annotation(make_lease(2)), clip_id="clip0002")
    store.mark_conflict(other.key, "completed_by_other", "gone")
    with pytest.raises(AmendError):
        store.amend(other.key, make_annotation(make_lease(2), "x"))
    with pytest.raises(AmendError):
        store.amend("nope-nope-nope", make_annotation(lease))
    with pytest.raises(AmendError, match="lease"):
        item = store.submit(make_annotation(lease), clip_id="clip0001")
        store.amend(item.key, make_annotation(make_lease(3)))


def test_conflict_rejects_pending_amendments(store: LocalStore) -> None:
    lease = make_lease(1)
    item = store.submit(make_annotation(lease), clip_id="clip0001")
    store.claim_due(10)
    store.amend(item.key, make_annotation(lease, "fix"))
    store.mark_conflict(item.key, "stale_fence", "old lease")
    (r,) = store.rejected()
    assert r.kind is OutboxKind.AMEND and r.reason == "target_not_stored"


def test_purge_wipes_everything_and_leaves_no_transcript_on_disk(home: Path) -> None:
    secret = "my neighbour's phone number is five five five"
    with LocalStore.open() as s:
        lease = make_lease(1)
        s.remember_lease(lease)
        s.save_draft(Draft(lease.lease_id, lease.clip.clip_id, secret))
        s.submit(make_annotation(make_lease(2), secret), clip_id="clip0002")
        s.purge()
        assert s.outbox_count() == 0 and s.history() == [] and s.live_leases() == []
    for f in (home / "data").iterdir():
        assert secret.encode() not in f.read_bytes(), f


def test_two_threads_share_the_store(store: LocalStore) -> None:
    errors: list[BaseException] = []

    def typist() -> None:
        try:
            for i in range(200):
                store.save_draft(Draft("lease0001", "clip0001", f"t{i}"))
                store.load_draft("lease0001")
        except BaseException as e:
            errors.append(e)

    def sender() -> None:
        try:
            for n in range(50):
                it = store.submit(make_annotation(make_lease(100 + n)), clip_id=f"c{n}")
                store.claim_due(10)
                store.mark_sent(it.key, _receipt(f"c{n}", n))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=typist), threading.Thread(target=sender)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.outbox_count() == 0 and len(store.history(100)) == 50


def test_sweep_prunes_week_old_acknowledged_history(store: LocalStore) -> None:
    old = store.submit(make_annotation(make_lease(1)), clip_id="clip0001")
    store.mark_sent(old.key, _receipt("clip0001"))
    waiting = store.submit(make_annotation(make_lease(2)), clip_id="clip0002")
    store.sweep_expired(time.time() + 8 * 86400)
    assert [h.key for h in store.history()] == [waiting.key]
