"""The SQLite backend: one WAL database plus a `LocalAudioStore` (the embedded default).

Concurrency: each server process holds one connection, used behind a lock (the event loop calls it
directly; the export and tests may call it from other threads). Every write is a `BEGIN IMMEDIATE`
transaction, which takes SQLite's single writer lock up front, so a claim's read-then-stamp cannot
interleave with another process's claim (`--workers N` share the file).

Durability: the connection runs `synchronous=NORMAL`, under which a WAL commit survives a crash of
the process but the last commits may roll back on power loss. That is right for leases (a lost
lease only returns its clip to the queue) and stats. Durable commits (annotations, amendments,
clips, tokens) switch to `synchronous=FULL` so the WAL is fsynced before the answer is sent (the
fsync also covers every earlier NORMAL commit in the WAL). `submit_many` runs several submissions
in one such transaction, a SAVEPOINT each, so they share one fsync: the batch endpoint uses it,
and so does the server's group commit (`api.server.group_commit`).

Group commit takes the flush apart from the COMMIT (`defers_sync`): it commits at NORMAL and then
`sync_commits()` fdatasyncs the WAL file on a thread, which is the flush `synchronous = FULL` does
at COMMIT (WAL frames are written in order, so the flush makes every commit before it durable).
The thread touches no connection and holds no lock, so the event loop goes on serving claims and
audio meanwhile instead of waiting ~0.3 ms an fsync with nothing to do. A WAL frame that a
checkpoint has copied into the database file is already durable there (a checkpoint syncs the
WAL before copying and the database file after), so a WAL that was reset or is gone needs no
flush for it.

Audio lives in files named by sha256 under `<data_dir>/audio/` (see `api.server.audio_store`),
made durable before the clips' rows commit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.server.audio_store import LocalAudioStore, private_dir
from api.server.migrations import SCHEMA_VERSION, SQLITE_MIGRATIONS
from api.server.repository import ExportRow
from api.server.sql_repo import CLAIMABLE_WHERE, ClaimGate, SqlRepository, new_id

BUSY_TIMEOUT_MS = 10_000


class NewerSchema(RuntimeError):
    """The database was made by a newer annotator."""


def _connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        db_path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write to finish.

    SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, and here a sleep stalls a
    server process's whole event loop, while writes (`--workers N` share the lock) hold it for
    ~0.1-0.3 ms. So the wait is ours: tries start 50 µs apart, doubling to 2 ms, up to the
    same overall timeout.
    """
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        delay = 50e-6
        deadline = 0.0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                now = time.monotonic()
                deadline = deadline or now + BUSY_TIMEOUT_MS / 1000
                if now > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2e-3)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


#: The claimable clips after the claim's head row (`SqlRepository.claim_head`): one read for the
#: gate, the cap's count and the candidates (none when the gate is closed).
_CLAIM_SQL = f"""
SELECT h.clear, h.live, h.replayed, p.seq, p.fence, p.clip_id, p.duration_s, p.sample_rate,
       p.channels, p.locale, p.sha256, p.asr_hint, p.asr_words
  FROM ({{head}}) AS h
  LEFT JOIN (SELECT seq, fence, clip_id, duration_s, sample_rate, channels, locale, sha256,
                    asr_hint, asr_words
               FROM clips AS c
              WHERE {CLAIMABLE_WHERE}
              ORDER BY c.seq
              LIMIT ?) AS p ON h.clear = 1 AND h.replayed = 0
 ORDER BY p.seq
"""  # noqa: S608 - built from our own constants, not from input


@dataclass(slots=True)
class _Shared:
    """An open `shared_writes` block: the thread it belongs to, whether a write in it was
    durable."""

    thread: int
    durable: bool = False


class SqliteRepository(SqlRepository):
    KIND = "sqlite"
    defers_sync = True
    shares_writes = True

    def __init__(
        self,
        db_path: Path,
        data_dir: Path,
        *,
        annotations_per_clip: int | None = None,
        migrate: bool = True,
    ) -> None:
        """`annotations_per_clip` (K), when given, becomes the queue's K: it is recorded for
        later ingests (which run as other processes) and applied to every queued clip."""
        self.db_path = db_path
        self.data_dir = data_dir
        private_dir(db_path.parent)
        private_dir(data_dir)
        self.audio = LocalAudioStore(data_dir / "audio")
        if not db_path.exists():
            # SQLite gives the -wal and -shm files the database file's mode: owner only.
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._wal_path = db_path.with_name(db_path.name + "-wal")
        self._synced_wal_inode = -1
        self._shared: _Shared | None = None
        self._conn = _connect(db_path)
        if migrate:
            self.applied_migrations = self.migrate()
        elif self.schema_version() != SCHEMA_VERSION:
            raise NewerSchema(f"{db_path} needs `annotator db migrate`")
        if annotations_per_clip is not None:
            self.set_annotations_per_clip(annotations_per_clip)

    def describe(self) -> str:
        return f"sqlite:///{self.db_path}"

    # ------------------------------------------------------------------ plumbing

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks, each in its own transaction (several
        processes may start on a new file at once: BEGIN IMMEDIATE serialises them, and each
        re-reads the version inside its transaction). The versions applied."""
        applied: list[int] = []
        with self._lock:
            while True:
                conn = self._conn
                _begin_immediate(conn)
                try:
                    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    if version > SCHEMA_VERSION:
                        raise NewerSchema(
                            f"{self.db_path} was made by a newer annotator (schema {version});"
                            " upgrade annotator"
                        )
                    if version == SCHEMA_VERSION:
                        conn.execute("COMMIT")
                        return applied
                    for statement in _statements(SQLITE_MIGRATIONS[version]):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
                    conn.execute("COMMIT")
                    applied.append(version + 1)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    @contextlib.contextmanager
    def shared_writes(self) -> Iterator[None]:
        """Every `_write` and `_read` this thread makes until the block ends runs in ONE
        transaction: a write as a SAVEPOINT (a refusal rolls back that write's statements
        only, as its own transaction would have), all committed together at the end (flushed
        there if any was durable). The claims of one event-loop turn share one this way
        (`api.server.claim_group`), saving each its BEGIN IMMEDIATE, PRAGMAs and COMMIT. An
        exception out of the block rolls back every write in it."""
        with self._lock:
            conn = self._conn
            _begin_immediate(conn)
            shared = self._shared = _Shared(threading.get_ident())
            try:
                try:
                    yield
                finally:
                    self._shared = None
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite rolls some failures back itself
                    conn.execute("ROLLBACK")
                raise
        if shared.durable:
            self.sync_commits()

    def _in_shared(self) -> _Shared | None:
        shared = self._shared
        return shared if shared is not None and shared.thread == threading.get_ident() else None

    @contextlib.contextmanager
    def _write(
        self, *, durable: bool = False, batched: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """One BEGIN IMMEDIATE transaction; `durable` fsyncs the WAL at commit (module doc).
        `batched` changes nothing here: every statement runs at once, in process. Inside
        `shared_writes`: a SAVEPOINT of its transaction."""
        shared = self._in_shared()
        if shared is not None:
            conn = self._conn
            shared.durable = shared.durable or durable
            conn.execute("SAVEPOINT write")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO SAVEPOINT write")
                    conn.execute("RELEASE SAVEPOINT write")
                raise
            conn.execute("RELEASE SAVEPOINT write")
            return
        with self._lock:
            conn = self._conn
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                _begin_immediate(conn)
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")

    def sync_commits(self) -> None:
        """fdatasync the WAL (module doc), and its directory the first time a WAL file is seen
        (a new file's name must be durable too: SQLite syncs the directory of a journal it
        created, at its first sync)."""
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: every commit was checkpointed into the (synced) database file
        try:
            inode = os.fstat(fd).st_ino
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if inode != self._synced_wal_inode:
            directory = os.open(self._wal_path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            self._synced_wal_inode = inode

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._in_shared() is not None:
            yield self._conn
            return
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ backend specifics

    def _claim_rows(
        self,
        conn: Any,
        annotator: str,
        count: int,
        t_now: float,
        expires: float,
        *,
        max_live: int | None,
        gate: ClaimGate | None,
        request_key: str | None = None,
        replay: bool = False,
    ) -> list[tuple[str, int, tuple[Any, ...]]]:
        head, head_params = self.claim_head(
            annotator, t_now, max_live, gate, request_key if replay else None
        )
        picked = conn.execute(
            _CLAIM_SQL.replace("{head}", head),
            (*head_params, t_now, annotator, annotator, annotator, count),
        ).fetchall()
        allowed = self.admit(picked[0][0], picked[0][1], picked[0][2], count, max_live)
        out: list[tuple[str, int, tuple[Any, ...]]] = []
        for _clear, _live, _replayed, seq, fence, *info in picked[:allowed]:
            if seq is None:  # the LEFT JOIN's row when nothing is claimable
                break
            lease_id = new_id()
            fence += 1
            conn.execute(
                "UPDATE clips SET fence = ?, current_lease = ?, leased_until = ? WHERE seq = ?",
                (fence, lease_id, expires, seq),
            )
            conn.execute(
                "INSERT INTO leases (lease_id, clip_id, annotator, fence, created_at, expires_at,"
                " request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (lease_id, info[0], annotator, fence, t_now, expires, request_key),
            )
            out.append((lease_id, fence, tuple(info)))
        return out

    def _known_sha256(self, digests: list[str]) -> set[str]:
        with self._read() as conn:
            return {
                row[0]
                for row in conn.execute(
                    "SELECT sha256 FROM clips WHERE sha256 IN (SELECT value FROM json_each(?))",
                    (json.dumps(digests),),
                )
            }

    def export(self) -> Iterator[ExportRow]:
        # Its own connection: the export streams from a worker thread while the main connection
        # keeps serving, and a long read must not hold the main connection's lock.
        conn = _connect(self.db_path)
        try:
            for row in conn.execute(self.EXPORT_SQL):
                yield self.export_row(row)
        finally:
            conn.close()

    # ------------------------------------------------------------------ db copy

    def columns(self, table: str) -> list[str]:
        with self._read() as conn:
            return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        conn = _connect(self.db_path)
        try:
            cols = ", ".join(self.columns(table))
            yield from conn.execute(f"SELECT {cols} FROM {table}")  # noqa: S608
        finally:
            conn.close()


def _statements(script: str) -> list[str]:
    """A migration script's statements (they hold no semicolons inside literals); a trigger's
    body (`BEGIN ...; END`) stays one statement: pieces are joined until SQLite calls it whole."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    statements: list[str] = []
    pending = ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().removesuffix(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().removesuffix(";").strip())
    return statements
