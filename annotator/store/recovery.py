"""Opening the local database, and what to do when the file on disk is not one.

A laptop that died mid-write, a full disk, a user who copied a half file: the annotator must still
start. A broken file is renamed aside (never deleted: it may hold unsent work that a developer can
still rescue with the sqlite3 shell) and a fresh database takes its place. Only damage moves a file
aside; a busy database (another annotator process holding the write lock) is an error, not damage.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from annotator.store.schema import SchemaTooNew, migrate

log = logging.getLogger("annotator.store")

# sqlite3 primary result codes that mean "this file is damaged or unusable", as opposed to busy.
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26
_DAMAGE_CODES = frozenset({_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB})
_SIDECARS = ("-wal", "-shm", "-journal")


class StoreError(Exception):
    """The local store cannot be used at all (e.g. the data directory is not writable)."""


class _Damaged(Exception):
    pass


def open_connection(path: Path) -> tuple[sqlite3.Connection, Path | None, str | None]:
    """A ready connection; plus where a damaged file was moved and why, when that happened."""
    # SQLite deletes a WAL it cannot use when the connection closes; a second hard link keeps its
    # bytes (free: no copy) so a damaged database is moved aside with its newest transactions.
    wal = path.with_name(path.name + "-wal")
    keep = path.with_name(path.name + "-wal.keep")
    keep.unlink(missing_ok=True)
    if wal.is_file():
        os.link(wal, keep)
    try:
        conn = _connect(path)
        keep.unlink(missing_ok=True)
        return conn, None, None
    except _Damaged as damage:
        reason = str(damage)
    aside = _move_aside(path)
    aside_wal = aside.with_name(aside.name + "-wal")
    if keep.exists():
        if aside_wal.exists():  # SQLite left it in place: the same bytes were moved already
            keep.unlink()
        else:
            keep.rename(aside_wal)
    log.error(
        "local database %s was unusable (%s); moved to %s, starting fresh", path, reason, aside
    )
    try:
        return _connect(path), aside, reason
    except _Damaged as again:
        raise StoreError(f"cannot create a fresh local database at {path}: {again}") from None


def _connect(path: Path) -> sqlite3.Connection:
    if path.exists() and not path.is_file():
        raise _Damaged("the path is not a regular file")
    conn: sqlite3.Connection | None = None
    try:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), so a write never
        # starts as a reader and dies upgrading its lock. check_same_thread=False: the store's own
        # lock serialises use from the TUI and sync threads.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise _Damaged(f"cannot enable WAL (journal mode {mode})")
        # FULL: a commit is on the platter before submit() returns; a dead laptop loses nothing.
        conn.execute("PRAGMA synchronous=FULL")
        # Deleted transcripts are overwritten, not left in free pages (purge, acknowledged work).
        conn.execute("PRAGMA secure_delete=ON")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise _Damaged(f"integrity check failed: {check}")
        migrate(conn)
        return conn
    except SchemaTooNew as e:
        # A newer annotator's store is not damaged: moving it aside would strand its outbox.
        _close(conn)
        raise StoreError(
            f"local database {path} was written by a newer annotator ({e}); upgrade annotator "
            "to use it - the file was left untouched"
        ) from None
    except sqlite3.DatabaseError as e:
        _close(conn)
        code = getattr(e, "sqlite_errorcode", None)
        if isinstance(e, sqlite3.OperationalError) and code not in _DAMAGE_CODES:
            raise StoreError(f"local database {path} is busy or unavailable: {e}") from None
        raise _Damaged(str(e)) from None
    except _Damaged:
        _close(conn)
        raise
    except OSError as e:
        _close(conn)
        raise _Damaged(str(e)) from None


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        suffix = f".broken-{stamp}" + (f"-{n}" if n else "")
        target = path.with_name(path.name + suffix)
        if not target.exists():
            break
    else:  # pragma: no cover - a thousand incidents in one second
        raise StoreError(f"cannot find a free name to move {path} aside")
    try:
        path.rename(target)
        # The WAL may hold the newest committed transactions of the broken file: keep it with it.
        for side in _SIDECARS:
            src = path.with_name(path.name + side)
            if src.exists():
                src.rename(target.with_name(target.name + side))
    except OSError as e:
        raise StoreError(f"local database {path} is unusable and cannot be moved aside: {e}") from e
    return target
