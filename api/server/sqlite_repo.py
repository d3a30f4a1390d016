"""The SQLite implementation of `Repository`: one WAL database plus a content-addressed audio store.

Concurrency: each server process holds one connection, used behind a lock (the event loop calls it
directly; tests may call it from another thread). Every write is a `BEGIN IMMEDIATE` transaction,
which takes SQLite's single writer lock up front, so a claim's read-then-stamp cannot interleave
with another process's claim; `busy_timeout` makes the loser wait instead of failing.

Durability: the connection runs `synchronous=NORMAL`, under which a WAL commit survives a crash of
the process but the last commits may roll back on power loss. That is right for leases (a lost
lease only returns its clip to the queue) and stats. Annotation commits switch to
`synchronous=FULL` so the WAL is fsynced before the receipt is sent: an annotator's work, once
acknowledged, survives power loss (the fsync also covers every earlier NORMAL commit in the WAL).
`submit_many` runs several submissions in one such transaction, a SAVEPOINT each, so they share
one fsync: the batch endpoint uses it, and so does the server's group commit
(`api.server.group_commit`), which is what keeps the fsync from dominating under load.

Audio lives in files named by sha256 under `<data_dir>/audio/`, written and made durable before the
clip's row commits: the database stays small (cheap checkpoints, cheap backups of the metadata),
and serving a clip is one small file read. `add_clip` fsyncs the file and its directory;
`add_clips` (and `ClipBatcher`, which `annotator ingest` uses) write a batch of files, make them
durable with one `syncfs` (an fsync each where there is none), rename them into place, make the
renames durable the same way, and only then commit the batch's rows in one durable transaction.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.models import AnnotationStatus, ReleaseReason, Role
from api.server.errors import Rejection, not_found
from api.server.records import NewClip
from api.server.repository import (
    Activity,
    AnnotationContent,
    ClipInfo,
    DraftTarget,
    ExportRow,
    LeaseGrant,
    LeaseStatus,
    Principal,
    StoredAnnotation,
    StoredAudio,
    Submission,
    SubmitResult,
)

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
#: Clips per durable step in `add_clips` (their audio is held in memory meanwhile).
ADD_CLIPS_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS clips (
    seq INTEGER PRIMARY KEY,               -- queue order (ingest order)
    clip_id TEXT NOT NULL UNIQUE,          -- random, opaque: the only id annotators see
    sha256 TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    locale TEXT NOT NULL,
    asr_hint TEXT,
    asr_words TEXT,                        -- machine draft: JSON [[word, confidence], ...]
    source_name TEXT,                      -- admin export only
    needed INTEGER NOT NULL,               -- K (the server's setting, applied at start)
    completed INTEGER NOT NULL DEFAULT 0,
    fence INTEGER NOT NULL DEFAULT 0,      -- bumped by every lease
    current_lease TEXT,                    -- the newest lease, while it may be live
    leased_until REAL,                     -- its expiry (unix seconds); NULL when nobody holds it
    created_at REAL NOT NULL
);
-- The claim scans only clips that still need work, in queue order.
CREATE INDEX IF NOT EXISTS clips_open ON clips(seq) WHERE completed < needed;

CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    fence INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    released INTEGER NOT NULL DEFAULT 0,
    release_reason TEXT,                   -- a ReleaseReason, or 'submitted'
    release_detail TEXT
);
CREATE INDEX IF NOT EXISTS leases_clip_annotator ON leases(clip_id, annotator);

CREATE TABLE IF NOT EXISTS annotations (
    annotation_id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    transcript TEXT NOT NULL,
    intent TEXT NOT NULL,
    flags TEXT NOT NULL,                   -- JSON list
    note TEXT,
    active_seconds REAL,
    status TEXT NOT NULL,
    escalated INTEGER NOT NULL DEFAULT 0,  -- sticky: escalations are never silently dropped
    taxonomy_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    amended_at REAL,
    UNIQUE (annotator, idempotency_key),
    UNIQUE (clip_id, annotator)            -- never two annotations of a clip by one person
);
CREATE INDEX IF NOT EXISTS annotations_by_time ON annotations(annotator, created_at);
CREATE INDEX IF NOT EXISTS annotations_escalated ON annotations(created_at) WHERE escalated = 1;
CREATE INDEX IF NOT EXISTS annotations_created ON annotations(created_at);

CREATE TABLE IF NOT EXISTS tokens (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

# Releasing for one of these reasons means "not for me": the clip is not offered to that annotator
# again. UNUSED (prefetched, never shown) and expiry put no such mark.
_SKIP_REASONS = tuple(r.value for r in ReleaseReason if r is not ReleaseReason.UNUSED)

_CLAIM_SQL = f"""
SELECT seq, clip_id, fence, duration_s, sample_rate, channels, locale, sha256, asr_hint,
       asr_words
  FROM clips AS c
 WHERE c.completed < c.needed
   AND (c.leased_until IS NULL OR c.leased_until <= :now)
   AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.clip_id = c.clip_id AND a.annotator = :me)
   AND NOT EXISTS (SELECT 1 FROM leases l
                    WHERE l.clip_id = c.clip_id AND l.annotator = :me
                      AND l.release_reason IN ({", ".join(f"'{r}'" for r in _SKIP_REASONS)}))
 ORDER BY c.seq
 LIMIT :count
"""  # noqa: S608 - the IN list is built from our own enum, not from input

_ANNOTATION_COLUMNS = (
    "annotation_id, clip_id, annotator, transcript, intent, flags, note, escalated, status, "
    "created_at, amended_at"
)


def _ts(when: datetime) -> float:
    return when.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _new_id() -> str:
    # 16 url-safe characters (96 bits): unguessable, and matches api.models.OpaqueId.
    return secrets.token_urlsafe(12)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _words(raw: str | None) -> tuple[tuple[str, float], ...] | None:
    if raw is None:
        return None
    return tuple((str(w), float(c)) for w, c in json.loads(raw))


def _annotation_from_row(row: sqlite3.Row | tuple[Any, ...]) -> StoredAnnotation:
    aid, clip_id, annotator, transcript, intent, flags, note, escalated, status = row[:9]
    created, amended = row[9], row[10]
    return StoredAnnotation(
        annotation_id=aid,
        clip_id=clip_id,
        annotator=annotator,
        content=AnnotationContent(
            transcript=transcript,
            intent=intent,
            flags=tuple(json.loads(flags)),
            note=note,
            escalated=bool(escalated),
        ),
        status=AnnotationStatus(status),
        created_at=_dt(created),
        amended_at=_dt(amended) if amended is not None else None,
    )


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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs_func() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):  # not Linux: fsync file by file
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return func


_SYNCFS = _syncfs_func()


def _syncfs(path: Path) -> bool:
    """Flush every write to the filesystem holding `path` to stable storage (Linux `syncfs`,
    which waits for the data, the metadata and the device's cache). False when unavailable."""
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)
    return True


def _sync_files(paths: list[Path]) -> None:
    """Make the contents of `paths` (all under one directory tree) durable: one `syncfs` for the
    lot where there is one, else an fsync each."""
    if paths and not _syncfs(paths[0]):
        for path in paths:
            _fsync_file(path)


def _sync_dirs(dirs: set[Path]) -> None:
    if dirs and not _syncfs(next(iter(dirs))):
        for d in sorted(dirs):
            _fsync_dir(d)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


class SqliteRepository:
    def __init__(
        self,
        db_path: Path,
        data_dir: Path,
        *,
        annotations_per_clip: int | None = None,
    ) -> None:
        """`annotations_per_clip` (K), when given, becomes the queue's K: it is recorded for
        later ingests (which run as other processes) and applied to every queued clip."""
        self.db_path = db_path
        self.data_dir = data_dir
        self.audio_dir = data_dir / "audio"
        _private_dir(db_path.parent)
        _private_dir(data_dir)
        _private_dir(self.audio_dir)
        if not db_path.exists():
            # SQLite gives the -wal and -shm files the database file's mode: owner only.
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._conn = _connect(db_path)
        self._migrate()
        if annotations_per_clip is not None:
            self._set_annotations_per_clip(annotations_per_clip)

    # ------------------------------------------------------------------ plumbing

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.db_path} was made by a newer annotator (schema {version}); upgrade"
                )
            if version == 1:
                self._upgrade_from_1()
            elif version < SCHEMA_VERSION:
                # One script, one transaction: several processes may start on a new file at once.
                self._conn.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )

    def _upgrade_from_1(self) -> None:
        # Re-read inside the write lock: another process may have upgraded meanwhile.
        _begin_immediate(self._conn)
        try:
            if self._conn.execute("PRAGMA user_version").fetchone()[0] == 1:
                self._conn.execute("ALTER TABLE clips ADD COLUMN asr_words TEXT")
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _set_annotations_per_clip(self, k: int) -> None:
        if k < 1:
            raise ValueError("annotations per clip must be at least 1")
        with self._lock, self._write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('annotations_per_clip', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(k),),
            )
            conn.execute("UPDATE clips SET needed = ? WHERE needed != ?", (k, k))

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One BEGIN IMMEDIATE transaction; `durable` fsyncs the WAL at commit (see module doc).
        The caller holds self._lock."""
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

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ admin

    def _audio_path(self, sha256: str) -> Path:
        return self.audio_dir / sha256[:2] / sha256

    def _store_audio(self, sha256: str, audio: bytes) -> None:
        path = self._audio_path(sha256)
        if path.exists() and path.stat().st_size == len(audio):
            return
        _private_dir(path.parent)
        tmp = self._write_tmp(path, audio)
        try:
            _fsync_file(tmp)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    @staticmethod
    def _write_tmp(path: Path, audio: bytes) -> Path:
        """`audio` in a new private temporary file beside `path` (not yet fsynced)."""
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(audio)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _store_audio_many(self, clips: list[NewClip]) -> None:
        """Store several clips' audio with one durability barrier per step instead of one fsync
        per file: write every temporary file, make them all durable, rename them into place, then
        make the renames durable. A crash at any point leaves each final path either absent or
        holding its complete bytes (the renames happen only after the data is on disk)."""
        pending: list[tuple[Path, Path]] = []
        try:
            for clip in clips:
                path = self._audio_path(clip.sha256)
                if path.exists() and path.stat().st_size == len(clip.audio):
                    continue
                _private_dir(path.parent)
                pending.append((self._write_tmp(path, clip.audio), path))
            if not pending:
                return
            _sync_files([tmp for tmp, _ in pending])
            for tmp, path in pending:
                tmp.replace(path)
        except BaseException:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
            raise
        _sync_dirs({path.parent for _, path in pending})

    def _insert_clip(
        self, conn: sqlite3.Connection, clip: NewClip, now: float, clip_id: str | None = None
    ) -> str | None:
        clip_id = clip_id or _new_id()
        cursor = conn.execute(
            "INSERT INTO clips (clip_id, sha256, media_type, size_bytes, duration_s,"
            " sample_rate, channels, locale, asr_hint, source_name, needed, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " COALESCE((SELECT CAST(value AS INTEGER) FROM meta"
            "           WHERE key = 'annotations_per_clip'), 1), ?)"
            " ON CONFLICT (sha256) DO NOTHING",
            (
                clip_id,
                clip.sha256,
                clip.media_type,
                len(clip.audio),
                clip.duration_s,
                clip.sample_rate,
                clip.channels,
                clip.locale,
                clip.asr_hint,
                clip.source_name,
                now,
            ),
        )
        # Another ingest may have queued the same bytes since we looked: not queued twice.
        return clip_id if cursor.rowcount == 1 else None

    def add_clip(self, clip: NewClip) -> str | None:
        with self._lock:
            known = self._conn.execute("SELECT 1 FROM clips WHERE sha256 = ?", (clip.sha256,))
            if known.fetchone():
                return None
        # Write the bytes before the row commits, so a queued clip always has its audio.
        self._store_audio(clip.sha256, clip.audio)
        with self._lock, self._write() as conn:
            return self._insert_clip(conn, clip, _ts(datetime.now(UTC)))

    def add_clips(self, clips: Iterable[NewClip], batch: int = ADD_CLIPS_BATCH) -> list[str | None]:
        """`add_clip` for many clips, in batches of `batch`: per batch the audio files are made
        durable together (see `_store_audio_many`) and the rows go in one durable transaction.
        Same result per clip as `add_clip`: its new clip id, or None for a duplicate (already
        queued, or the same sha256 earlier in `clips`)."""
        results: list[str | None] = []
        chunk: list[NewClip] = []
        for clip in clips:
            chunk.append(clip)
            if len(chunk) >= batch:
                results += self._add_clip_batch(chunk)
                chunk = []
        if chunk:
            results += self._add_clip_batch(chunk)
        return results

    def _known_sha256(self, digests: list[str]) -> set[str]:
        with self._lock:
            return {
                row[0]
                for row in self._conn.execute(
                    "SELECT sha256 FROM clips WHERE sha256 IN (SELECT value FROM json_each(?))",
                    (json.dumps(digests),),
                )
            }

    def _add_clip_batch(
        self, clips: list[NewClip], clip_ids: list[str] | None = None
    ) -> list[str | None]:
        known = self._known_sha256([c.sha256 for c in clips])
        fresh: dict[str, NewClip] = {}
        for clip in clips:
            if clip.sha256 not in known:
                fresh.setdefault(clip.sha256, clip)
        # Write the bytes before the rows commit, so a queued clip always has its audio.
        self._store_audio_many(list(fresh.values()))
        results: list[str | None] = [None] * len(clips)
        now = _ts(datetime.now(UTC))
        with self._lock, self._write(durable=True) as conn:
            for i, clip in enumerate(clips):
                if fresh.get(clip.sha256) is clip:
                    del fresh[clip.sha256]  # later clips with the same bytes are duplicates
                    given = clip_ids[i] if clip_ids is not None else None
                    results[i] = self._insert_clip(conn, clip, now, given)
        return results

    def batcher(self) -> ClipBatcher:
        return ClipBatcher(self)

    def create_token(self, name: str, role: Role) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock, self._write() as conn:
            conn.execute(
                "INSERT INTO tokens (token_sha256, name, role, created_at) VALUES (?, ?, ?, ?)",
                (token_hash(token), name, Role(role).value, _ts(datetime.now(UTC))),
            )
        return token

    def principal_for_token(self, token: str) -> Principal | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT name, role FROM tokens WHERE token_sha256 = ?", (token_hash(token),)
            ).fetchone()
        return Principal(name=row[0], role=Role(row[1])) if row else None

    # ------------------------------------------------------------------ machine drafts

    def undrafted_clips(self, clip_ids: Sequence[str] | None = None) -> list[DraftTarget]:
        sql = (
            "SELECT clip_id, source_name, duration_s, sha256, media_type, size_bytes FROM clips"
            " WHERE completed < needed AND asr_hint IS NULL AND asr_words IS NULL"
        )
        params: tuple[str, ...] = ()
        if clip_ids is not None:
            sql += " AND clip_id IN (SELECT value FROM json_each(?))"
            params = (json.dumps(list(clip_ids)),)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [
            DraftTarget(cid, name, dur, StoredAudio(self._audio_path(sha), media, size))
            for cid, name, dur, sha, media, size in rows
        ]

    def set_draft(self, clip_id: str, text: str | None, words: Sequence[tuple[str, float]]) -> bool:
        encoded = json.dumps([[w, c] for w, c in words], ensure_ascii=False)
        with self._lock, self._write() as conn:
            cursor = conn.execute(
                "UPDATE clips SET asr_hint = ?, asr_words = ?"
                " WHERE clip_id = ? AND asr_hint IS NULL AND asr_words IS NULL",
                (text, encoded, clip_id),
            )
        return cursor.rowcount == 1

    # ------------------------------------------------------------------ leases

    def claim(self, annotator: str, count: int, ttl_s: int, now: datetime) -> list[LeaseGrant]:
        t_now = _ts(now)
        expires = t_now + ttl_s
        grants: list[LeaseGrant] = []
        with self._lock, self._write() as conn:
            params = {"now": t_now, "me": annotator, "count": count}
            rows = conn.execute(_CLAIM_SQL, params).fetchall()
            for seq, clip_id, fence, duration, rate, channels, locale, sha, hint, words in rows:
                lease_id = _new_id()
                fence += 1
                conn.execute(
                    "UPDATE clips SET fence = ?, current_lease = ?, leased_until = ? WHERE seq = ?",
                    (fence, lease_id, expires, seq),
                )
                conn.execute(
                    "INSERT INTO leases (lease_id, clip_id, annotator, fence, created_at,"
                    " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (lease_id, clip_id, annotator, fence, t_now, expires),
                )
                grants.append(
                    LeaseGrant(
                        lease_id=lease_id,
                        fence=fence,
                        expires_at=_dt(expires),
                        clip=ClipInfo(
                            clip_id, duration, rate, channels, locale, sha, hint, _words(words)
                        ),
                    )
                )
        return grants

    def _own_lease(
        self, conn: sqlite3.Connection, lease_id: str, annotator: str
    ) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT clip_id, annotator, fence, expires_at, released, release_reason"
            " FROM leases WHERE lease_id = ?",
            (lease_id,),
        ).fetchone()
        if row is None:
            raise not_found("lease")
        if row[1] != annotator:
            raise Rejection(403, "not_your_lease", "this lease belongs to someone else")
        return tuple(row)

    @staticmethod
    def _require_live(row: tuple[Any, ...], t_now: float) -> None:
        if row[4]:
            raise Rejection(410, "lease_released", "this lease was released or already submitted")
        if row[3] <= t_now:
            raise Rejection(410, "lease_expired", "this lease has expired; lease the clip again")

    def renew(self, lease_id: str, annotator: str, ttl_s: int, now: datetime) -> LeaseStatus:
        t_now = _ts(now)
        with self._lock, self._write() as conn:
            row = self._own_lease(conn, lease_id, annotator)
            self._require_live(row, t_now)
            expires = t_now + ttl_s
            conn.execute("UPDATE leases SET expires_at = ? WHERE lease_id = ?", (expires, lease_id))
            conn.execute(
                "UPDATE clips SET leased_until = ? WHERE clip_id = ? AND current_lease = ?",
                (expires, row[0], lease_id),
            )
        return LeaseStatus(lease_id=lease_id, fence=row[2], expires_at=_dt(expires), released=False)

    def release(
        self,
        lease_id: str,
        annotator: str,
        reason: ReleaseReason,
        detail: str | None,
        now: datetime,
    ) -> None:
        with self._lock, self._write() as conn:
            row = self._own_lease(conn, lease_id, annotator)
            if row[4]:
                return  # releasing twice is harmless (a retried request)
            conn.execute(
                "UPDATE leases SET released = 1, release_reason = ?, release_detail = ?"
                " WHERE lease_id = ?",
                (ReleaseReason(reason).value, detail, lease_id),
            )
            conn.execute(
                "UPDATE clips SET leased_until = NULL, current_lease = NULL"
                " WHERE clip_id = ? AND current_lease = ?",
                (row[0], lease_id),
            )

    def lease_audio(self, lease_id: str, annotator: str, now: datetime) -> StoredAudio:
        with self._lock:
            row = self._own_lease(self._conn, lease_id, annotator)
            self._require_live(row, _ts(now))
            clip = self._conn.execute(
                "SELECT sha256, media_type, size_bytes FROM clips WHERE clip_id = ?", (row[0],)
            ).fetchone()
        if clip is None:  # pragma: no cover - a lease always has its clip
            raise not_found("clip")
        return StoredAudio(path=self._audio_path(clip[0]), media_type=clip[1], size=clip[2])

    # ------------------------------------------------------------------ annotations

    def submit(self, annotator: str, submission: Submission, now: datetime) -> SubmitResult:
        with self._lock, self._write(durable=True) as conn:
            return self._submit_one(conn, annotator, submission, _ts(now))

    def submit_many(
        self, items: Sequence[tuple[str, Submission]], now: datetime
    ) -> list[SubmitResult | Rejection]:
        """Several `submit`s, in order, as one durable transaction: each item runs in its own
        SAVEPOINT, so an item that is refused (its `Rejection` is its result) leaves no trace and
        does not affect the others, exactly as if the items had been submitted one by one; the
        accepted ones become durable together at the single COMMIT, before this returns."""
        t_now = _ts(now)
        results: list[SubmitResult | Rejection] = []
        if not items:
            return results
        with self._lock, self._write(durable=True) as conn:
            for annotator, submission in items:
                conn.execute("SAVEPOINT item")
                try:
                    result: SubmitResult | Rejection = self._submit_one(
                        conn, annotator, submission, t_now
                    )
                except Rejection as r:
                    conn.execute("ROLLBACK TO item")
                    result = r
                conn.execute("RELEASE item")
                results.append(result)
        return results

    def _submit_one(
        self, conn: sqlite3.Connection, annotator: str, s: Submission, t_now: float
    ) -> SubmitResult:
        """One submission inside the caller's write transaction; raises `Rejection` when refused
        (it may have written nothing by then: every check precedes the first write)."""
        earlier = conn.execute(
            f"SELECT request_hash, {_ANNOTATION_COLUMNS} FROM annotations"  # noqa: S608
            " WHERE annotator = ? AND idempotency_key = ?",
            (annotator, s.idempotency_key),
        ).fetchone()
        if earlier is not None:
            if earlier[0] != s.request_hash:
                raise Rejection(
                    422,
                    "idempotency_mismatch",
                    "this Idempotency-Key was already used for a different annotation; "
                    "use a new key for new content",
                    field="Idempotency-Key",
                )
            return SubmitResult(annotation=_annotation_from_row(earlier[1:]), replayed=True)

        lease = self._own_lease(conn, s.lease_id, annotator)
        clip_id, _, lease_fence, expires_at, released, _ = lease
        if s.fence != lease_fence:
            raise Rejection(
                409, "stale_fence", "the fence does not match this lease", field="fence"
            )
        clip = conn.execute(
            "SELECT completed, needed, current_lease, leased_until FROM clips WHERE clip_id = ?",
            (clip_id,),
        ).fetchone()
        completed, needed, current_lease, leased_until = clip
        mine = conn.execute(
            "SELECT annotation_id FROM annotations WHERE clip_id = ? AND annotator = ?",
            (clip_id, annotator),
        ).fetchone()
        if mine is not None:
            raise Rejection(
                409, "already_annotated", f"you already annotated this clip ({mine[0]})"
            )
        if completed >= needed:
            raise Rejection(
                409,
                "completed_by_other",
                "someone else completed this clip after your lease expired",
            )
        live = not released and expires_at > t_now
        if not live and current_lease != s.lease_id and (leased_until or 0) > t_now:
            # The clip was leased again since (a newer fence) and that lease is live.
            raise Rejection(
                409,
                "stale_fence",
                "your lease expired and the clip is now leased to someone else",
                field="fence",
            )
        status = AnnotationStatus.ACCEPTED if live else AnnotationStatus.LATE
        annotation_id = _new_id()
        c = s.content
        conn.execute(
            "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator,"
            " idempotency_key, request_hash, body, transcript, intent, flags, note,"
            " active_seconds, status, escalated, taxonomy_version, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                annotation_id,
                clip_id,
                s.lease_id,
                annotator,
                s.idempotency_key,
                s.request_hash,
                s.body_json,
                c.transcript,
                c.intent,
                json.dumps(list(c.flags)),
                c.note,
                s.active_seconds,
                status.value,
                int(c.escalated),
                s.taxonomy_version,
                t_now,
            ),
        )
        if current_lease == s.lease_id:
            conn.execute(
                "UPDATE clips SET completed = completed + 1, current_lease = NULL,"
                " leased_until = NULL WHERE clip_id = ?",
                (clip_id,),
            )
        else:
            conn.execute("UPDATE clips SET completed = completed + 1 WHERE clip_id = ?", (clip_id,))
        if not released:
            conn.execute(
                "UPDATE leases SET released = 1, release_reason = 'submitted' WHERE lease_id = ?",
                (s.lease_id,),
            )
        stored = StoredAnnotation(
            annotation_id=annotation_id,
            clip_id=clip_id,
            annotator=annotator,
            content=c,
            status=status,
            created_at=_dt(t_now),
            amended_at=None,
        )
        return SubmitResult(annotation=stored, replayed=False)

    def get_annotation(self, annotation_id: str) -> StoredAnnotation | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE annotation_id = ?",  # noqa: S608
                (annotation_id,),
            ).fetchone()
        return _annotation_from_row(row) if row else None

    def amend(
        self,
        annotation_id: str,
        annotator: str,
        content: AnnotationContent,
        now: datetime,
        window_s: int,
    ) -> StoredAnnotation:
        t_now = _ts(now)
        with self._lock, self._write(durable=True) as conn:
            row = conn.execute(
                "SELECT annotator, created_at FROM annotations WHERE annotation_id = ?",
                (annotation_id,),
            ).fetchone()
            if row is None:
                raise not_found("annotation")
            if row[0] != annotator:
                raise Rejection(403, "not_author", "only its author may amend an annotation")
            if t_now > row[1] + window_s:
                raise Rejection(
                    409,
                    "amend_window_closed",
                    f"annotations can be amended for {window_s} s after submission",
                )
            conn.execute(
                "UPDATE annotations SET transcript = ?, intent = ?, flags = ?, note = ?,"
                " escalated = MAX(escalated, ?), amended_at = ? WHERE annotation_id = ?",
                (
                    content.transcript,
                    content.intent,
                    json.dumps(list(content.flags)),
                    content.note,
                    int(content.escalated),
                    t_now,
                    annotation_id,
                ),
            )
            updated = conn.execute(
                f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE annotation_id = ?",  # noqa: S608
                (annotation_id,),
            ).fetchone()
        return _annotation_from_row(updated)

    def activity(self, annotator: str, since: datetime) -> list[Activity]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT created_at, active_seconds FROM annotations"
                " WHERE annotator = ? AND created_at >= ? ORDER BY created_at",
                (annotator, _ts(since)),
            ).fetchall()
        return [Activity(created_at=_dt(r[0]), active_seconds=r[1]) for r in rows]

    def count_annotations(self, annotator: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM annotations WHERE annotator = ?", (annotator,)
            ).fetchone()
        return int(row[0])

    def escalations(self, limit: int) -> list[StoredAnnotation]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ANNOTATION_COLUMNS} FROM annotations"  # noqa: S608
                " WHERE escalated = 1 ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_annotation_from_row(r) for r in rows]

    def export(self) -> Iterator[ExportRow]:
        # Its own connection: the export streams from a worker thread while the main connection
        # keeps serving, and a long read must not hold the main connection's lock.
        conn = _connect(self.db_path)
        cols = ", ".join(f"a.{c.strip()}" for c in _ANNOTATION_COLUMNS.split(","))
        try:
            cursor = conn.execute(
                f"SELECT {cols}, c.source_name, c.locale, a.taxonomy_version"  # noqa: S608
                " FROM annotations a JOIN clips c ON c.clip_id = a.clip_id ORDER BY a.created_at"
            )
            for row in cursor:
                yield ExportRow(
                    annotation=_annotation_from_row(row[:11]),
                    source_name=row[11],
                    locale=row[12],
                    taxonomy_version=row[13],
                )
        finally:
            conn.close()


class ClipBatcher:
    """`add_clip` for `ingest_paths`'s one-clip-at-a-time callback, made durable in batches.

    Each call answers at once (None for audio already queued, else the clip id the clip WILL
    have) and holds the clip; every `ADD_CLIPS_BATCH` clips or `BATCH_BYTES` of audio, and at
    `flush()`, the held clips are stored as `add_clips` does (files made durable together, rows in
    one durable transaction). The caller must `flush()` before reporting success: until then the
    answered ids are promises. A clip that another ingest queued in between is not stored twice;
    its promised id is then listed in `lost_to_race` (the audio is queued under the other id).
    """

    BATCH_BYTES = 64 * 1024 * 1024

    def __init__(self, repo: SqliteRepository) -> None:
        self.repo = repo
        self.lost_to_race: list[str] = []
        self._held: list[NewClip] = []
        self._ids: list[str] = []
        self._bytes = 0

    def add_clip(self, clip: NewClip) -> str | None:
        if any(c.sha256 == clip.sha256 for c in self._held) or self.repo._known_sha256(
            [clip.sha256]
        ):
            return None
        clip_id = _new_id()
        self._held.append(clip)
        self._ids.append(clip_id)
        self._bytes += len(clip.audio)
        if len(self._held) >= ADD_CLIPS_BATCH or self._bytes >= self.BATCH_BYTES:
            self.flush()
        return clip_id

    def flush(self) -> None:
        held, ids = self._held, self._ids
        self._held, self._ids, self._bytes = [], [], 0
        if held:
            stored = self.repo._add_clip_batch(held, ids)
            self.lost_to_race += [i for i, got in zip(ids, stored, strict=True) if got is None]
