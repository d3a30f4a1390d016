"""The WAL is checkpointed by the sync thread's acknowledgements, not by the TUI's commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.store import LocalStore
from annotator.store import db as store_db
from api.models import AnnotationStatus, Receipt
from tests.store.conftest import make_annotation, make_lease


def _wal_frames(store: LocalStore) -> int:
    # PASSIVE on the store's own connection just reports (busy, frames in the WAL, backfilled).
    row = store._read("PRAGMA wal_checkpoint(PASSIVE)")[0]
    return int(str(row[1]))


def test_remember_current_records_the_lease_and_the_clip_on_screen(store: LocalStore) -> None:
    lease = make_lease(1)
    store.remember_current(lease)
    assert [le.lease_id for le in store.live_leases()] == [lease.lease_id]
    assert store.current_lease_id() == lease.lease_id


def test_acknowledgements_checkpoint_the_wal_every_so_many_commits(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "CHECKPOINT_EVERY_COMMITS", 4)
    checkpoints: list[int] = []
    original = store.checkpoint_soon

    def spy() -> None:
        before = store._checkpointed_at
        original()
        if store._checkpointed_at != before:
            checkpoints.append(store._checkpointed_at)

    monkeypatch.setattr(store, "checkpoint_soon", spy)
    for n in range(6):
        lease = make_lease(n)
        store.remember_current(lease)
        item = store.submit(make_annotation(lease), clip_id=lease.clip.clip_id)
        receipt = Receipt(
            annotation_id=f"ann{n}", clip_id=lease.clip.clip_id, status=AnnotationStatus.ACCEPTED
        )
        store.mark_sent_many([(item.key, receipt)])
    assert checkpoints  # some acknowledgements checkpointed, not all of them
    assert len(checkpoints) < 6
    assert store._side is not None
    store.close()
    assert store._side is None


def test_a_checkpoint_failure_is_harmless(tmp_path: Path) -> None:
    store = LocalStore.open(tmp_path / "local.db")
    try:
        store._commits = store_db.CHECKPOINT_EVERY_COMMITS
        store.path = tmp_path / "missing-dir" / "local.db"  # the side connection cannot open
        store.checkpoint_soon()
        store.path = tmp_path / "local.db"
        lease = make_lease(1)
        store.submit(make_annotation(lease), clip_id=lease.clip.clip_id)
        assert store.outbox_count() == 1
        assert _wal_frames(store) >= 1
    finally:
        store.close()
