"""A damaged local database is moved aside (never deleted) and replaced, with no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from annotator.store import Draft, LocalStore
from annotator.store.db import StoreError
from tests.store.conftest import make_annotation, make_lease


def _db(home: Path) -> Path:
    return home / "data" / "local.db"


def _populated(home: Path) -> Path:
    with LocalStore.open() as s:
        for n in range(300):
            s.remember_lease(make_lease(n))
            s.save_draft(Draft(f"lease{n:04d}", f"clip{n:04d}", "words " * 200))
        s.submit(make_annotation(make_lease(1)), clip_id="clip0001")
        s.pragma("wal_checkpoint(TRUNCATE)")
    return _db(home)


def _assert_recovered(home: Path, original: bytes | None) -> None:
    with LocalStore.open() as s:
        assert s.recovered_from is not None
        assert s.recovered_from.name.startswith("local.db.broken-")
        assert s.recovery_message and str(s.recovered_from) in s.recovery_message
        if original is not None:
            assert s.recovered_from.read_bytes() == original  # moved, byte for byte, not deleted
        assert s.outbox_count() == 0
        s.remember_lease(make_lease(1))  # the fresh database works
    with LocalStore.open() as s:
        assert s.recovered_from is None  # and the next start is quiet


def test_random_bytes(home: Path) -> None:
    path = _db(home)
    path.parent.mkdir(parents=True)
    junk = os.urandom(8192)
    path.write_bytes(junk)
    _assert_recovered(home, junk)


def test_truncated_database(home: Path) -> None:
    path = _populated(home)
    data = path.read_bytes()
    assert len(data) > 64 * 1024
    path.write_bytes(data[: len(data) // 2])
    _assert_recovered(home, data[: len(data) // 2])


def test_damaged_pages(home: Path) -> None:
    path = _populated(home)
    data = bytearray(path.read_bytes())
    page = 4096
    for i in range(2 * page, len(data), 3 * page):
        data[i + 16 : i + 200] = os.urandom(184)
    path.write_bytes(bytes(data))
    _assert_recovered(home, bytes(data))


def test_header_only(home: Path) -> None:
    path = _db(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 20)
    _assert_recovered(home, None)


def test_directory_in_place_of_the_file(home: Path) -> None:
    path = _db(home)
    (path / "inside").mkdir(parents=True)
    _assert_recovered(home, None)
    aside = next(p for p in path.parent.iterdir() if p.name.startswith("local.db.broken-"))
    assert (aside / "inside").is_dir()


def test_wal_moves_with_its_database(home: Path) -> None:
    path = _db(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    wal = path.with_name("local.db-wal")
    wal.write_bytes(b"wal bytes")
    _assert_recovered(home, None)
    assert any(
        p.name.endswith("-wal") and p.read_bytes() == b"wal bytes" for p in path.parent.iterdir()
    )


def test_database_from_a_newer_annotator(home: Path) -> None:
    path = _db(home)
    with LocalStore.open():
        pass
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    # Not damage: the newer annotator's outbox must stay where that annotator will look for it.
    with pytest.raises(StoreError, match="newer annotator"):
        LocalStore.open()
    assert path.exists()
    assert not list(path.parent.glob(f"{path.name}.broken-*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(home: Path) -> None:
    path = _db(home)
    with LocalStore.open():
        pass
    path.chmod(0)
    _assert_recovered(home, None)


def test_fresh_process_reports_instead_of_crashing(home: Path) -> None:
    path = _db(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(10_000))
    code = (
        "from annotator.store import LocalStore\n"
        "s = LocalStore.open()\n"
        "print('RECOVERED', s.recovered_from is not None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "ANNOTATOR_HOME": str(home)},
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "RECOVERED True" in out.stdout
    assert "Traceback" not in out.stderr
