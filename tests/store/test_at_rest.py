"""Finding 5 (issue 10): nothing anyone said is readable from the annotator's disk.

A real LocalStore (real SQLite, WAL, the real key file) is used the way the TUI and sync engine
use it — drafts typed, submissions queued, amended, acknowledged, put in conflict — and then every
byte of every file under the profile (local.db, -wal, -shm, the cache, aside copies) is searched
for the words, as `strings` would. Plus: a store written before sealing is resealed on open, an
exposed key is rotated without losing unsent work, history is kept 24 h, purge leaves no copy.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from annotator.store import LocalStore
from annotator.store.db import HISTORY_KEEP_S
from annotator.store.fields import PREFIX
from annotator.store.keys import RETIRED_FILE, load_cache_key
from annotator.store.models import Draft, LeaseOrigin
from api.models import AnnotationStatus, Receipt
from tests.store.conftest import make_annotation, make_lease

WORDS = {
    "draft": "remind me to call doctor okafor",
    "note": "caller sounds frightened zanzibar",
    "submitted": "order more insulin pens",
    "amended": "unlock the front door quietly",
    "conflicted": "transfer four hundred to marguerite",
    "hint": "asr guess about quenby",
}


def _every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _find_words(root: Path) -> dict[str, list[str]]:
    """Each word's occurrences in any file under `root` (as `strings`, plus UTF-16)."""
    found: dict[str, list[str]] = {}
    for path in _every_file(root):
        blob = path.read_bytes()
        for word in WORDS.values():
            for probe in (word, word.split()[-1]):
                if probe.encode() in blob or probe.encode("utf-16-le") in blob:
                    found.setdefault(probe, []).append(path.name)
    return found


def _receipt(lease_id: str, clip_id: str) -> Receipt:
    return Receipt(
        annotation_id=f"ann-{lease_id}", clip_id=clip_id, status=AnnotationStatus.ACCEPTED
    )


def _work_a_shift(store: LocalStore) -> None:
    leases = [make_lease(i) for i in range(5)]
    hinted, prefetched = (
        le.model_copy(update={"clip": le.clip.model_copy(update={"asr_hint": WORDS["hint"]})})
        for le in leases[3:]
    )
    for lease in (*leases[:3], hinted):
        store.remember_lease(lease)
    # The workbench records each prefetched lease the moment it is granted: sealed the same way.
    store.remember_leases([prefetched], origin=LeaseOrigin.PREFETCH, session="host:1:2")
    store.save_draft(
        Draft(lease_id=leases[0].lease_id, clip_id=leases[0].clip.clip_id,
              transcript=WORDS["draft"], note=WORDS["note"], flags=("distress",))
    )  # fmt: skip
    sent = store.submit(make_annotation(leases[1], WORDS["submitted"]), clip_id="clip0001")
    store.claim_due(10, force=True)  # an attempt left: the amendment becomes a queued PATCH
    store.mark_sent(sent.key, _receipt(leases[1].lease_id, "clip0001"))
    store.amend(sent.key, make_annotation(leases[1], WORDS["amended"]))
    lost = store.submit(make_annotation(leases[2], WORDS["conflicted"]), clip_id="clip0002")
    store.mark_conflict(lost.key, "completed_by_other", "someone else completed it")


def test_no_transcript_note_or_hint_is_readable_in_any_file_of_the_profile(
    home: Path, store: LocalStore
) -> None:
    _work_a_shift(store)
    # The store still gives everything back to its owner.
    draft = store.load_draft("lease0000")
    assert draft is not None and (draft.transcript, draft.note) == (WORDS["draft"], WORDS["note"])
    assert {h.annotation.transcript for h in store.history()} == {
        WORDS["amended"],
        WORDS["conflicted"],
    }
    assert [c.annotation.transcript for c in store.conflicts()] == [WORDS["conflicted"]]
    assert any(le.clip.asr_hint == WORDS["hint"] for le in store.live_leases())
    records = {r.lease_id: r for r in store.lease_records()}
    assert records["lease0004"].lease.clip.asr_hint == WORDS["hint"]
    assert records["lease0004"].origin is LeaseOrigin.PREFETCH
    patch = [o for o in store.outbox() if o.kind == "amend"]
    assert patch and json.loads(patch[0].body_json)["transcript"] == WORDS["amended"]
    assert (home / "data" / "local.db-wal").exists()  # the WAL is searched too, while live

    assert _find_words(home) == {}
    store.close()
    assert _find_words(home) == {}


def test_a_store_written_before_sealing_is_resealed_on_open(home: Path) -> None:
    store = LocalStore.open()
    path = store.path
    _work_a_shift(store)
    store.close()
    # Put the rows back in the clear, as an annotator before this change wrote them.
    conn = sqlite3.connect(path)
    from annotator.store.fields import FieldCipher

    cipher = FieldCipher(load_cache_key()[0])
    with conn:
        for table, key_col, col, aad in LocalStore._SEALED:
            for k, v in conn.execute(f"SELECT {key_col}, {col} FROM {table}").fetchall():
                plain = cipher.open_opt(v, aad(k))
                conn.execute(f"UPDATE {table} SET {col} = ? WHERE {key_col} = ?", (plain, k))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert _find_words(home), "the test did not put plaintext back"

    with LocalStore.open() as reopened:
        assert reopened.load_draft("lease0000") is not None
        assert reopened.load_draft("lease0000").transcript == WORDS["draft"]  # type: ignore[union-attr]
        assert len(reopened.history()) == 2
    assert _find_words(home) == {}
    raw = sqlite3.connect(path)
    bodies = [r[0] for r in raw.execute("SELECT body_json FROM history")]
    raw.close()
    assert bodies and all(b.startswith(PREFIX) for b in bodies)


def test_an_exposed_key_is_rotated_and_unsent_work_survives(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore.open()
    _work_a_shift(store)
    store.close()
    old, where = load_cache_key()
    Path(where).chmod(0o644)  # readable by others: treat it as known to them

    with LocalStore.open() as reopened:
        assert "readable by other users" in (reopened.recovery_message or "")
        assert reopened.load_draft("lease0000").note == WORDS["note"]  # type: ignore[union-attr]
        assert reopened.outbox_count() == 1  # the queued amendment is still there
    new, _ = load_cache_key()
    assert new != old
    assert Path(where).stat().st_mode & 0o777 == 0o600
    assert not (home / "config" / RETIRED_FILE).exists(), "the exposed key was kept"
    # Nothing in the store opens with the exposed key any more.
    from annotator.store.fields import FieldCipher, SealedFieldError, body_aad

    raw = sqlite3.connect(home / "data" / "local.db")
    key, body = raw.execute("SELECT key, body_json FROM history").fetchone()
    raw.close()
    with pytest.raises(SealedFieldError):
        FieldCipher(old).open(body, body_aad(key))


def test_history_is_kept_for_a_day_by_default_and_as_configured(home: Path) -> None:
    assert HISTORY_KEEP_S == 24 * 3600
    with LocalStore.open(history_keep_s=3600) as store:
        lease = make_lease(1)
        store.remember_lease(lease)
        item = store.submit(make_annotation(lease, WORDS["submitted"]), clip_id="clip0001")
        store.mark_sent(item.key, _receipt(lease.lease_id, "clip0001"))
        now = datetime.now(UTC).timestamp()
        store.sweep_expired(now + 3500)
        assert len(store.history()) == 1
        store.sweep_expired(now + 3700)
        assert store.history() == []


def test_the_config_sets_the_history_retention(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotator.config import Settings

    monkeypatch.setenv("ANNOTATOR_HISTORY_HOURS", "2")
    assert Settings().history_hours == 2
    monkeypatch.setenv("ANNOTATOR_HISTORY_HOURS", "10000")
    with pytest.raises(ValueError, match="history_hours"):
        Settings()


def test_purge_removes_every_copy_including_damaged_ones_set_aside(home: Path) -> None:
    data = home / "data"
    data.mkdir(parents=True)
    db = data / "local.db"
    db.write_bytes(b"this is not a database " + WORDS["submitted"].encode() * 100)
    (data / "local.db-wal").write_bytes(WORDS["conflicted"].encode() * 50)
    with LocalStore.open() as store:
        assert store.recovered_from is not None  # moved aside, with its WAL
        assert len(store.aside_copies()) == 2
        _work_a_shift(store)
        assert store.purge() == 2
        assert store.aside_copies() == []
        assert store.counts()["history"] == 0
    assert sorted(p.name for p in data.iterdir() if "broken" in p.name) == []
    assert _find_words(home) == {}


def test_clients_starting_together_rotate_an_exposed_key_once(home: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    old, where = load_cache_key()
    Path(where).chmod(0o644)
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: load_cache_key()[0], range(8)))
    assert len(set(keys)) == 1 and keys[0] != old
    assert load_cache_key()[0] == keys[0]
