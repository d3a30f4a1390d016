"""The annotator's local store: leases, drafts, outbox, history and conflicts in one SQLite file.

Nothing anyone said is stored in the clear: transcripts, notes, annotation bodies and leases
(their ASR hints) are sealed with AES-GCM under a key derived from the cache key (`fields.py`;
why not SQLCipher is written there). A store written before that is resealed when it is opened.
Acknowledged submissions are kept for `history_keep_s` (default 24 h) for the review list, then
deleted; `purge` also removes damaged copies moved aside by `recovery.py`.

Everything an annotator finishes goes through here before anything touches the network, so the
rules are strict: WAL with `synchronous=FULL` (a commit survives kill -9 and power loss), one
explicit transaction per logical step (submit writes outbox + history + draft + lease at once),
and the sync engine claims outbox rows by bumping their attempt count in the same transaction that
reads them, so an amendment can tell whether a body may already have left the machine.

One connection, guarded by a lock, serves the TUI's event-loop thread and the sync thread: every
call is a handful of indexed statements, far cheaper than the contention of several writers.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from annotator import paths
from annotator.store.fields import FieldCipher, body_aad, draft_aad, lease_aad
from annotator.store.keys import discard_retired_keys, exposure_notice, load_cache_key, retired_keys
from annotator.store.models import (
    ConflictItem,
    Draft,
    HistoryItem,
    LeaseOrigin,
    LeaseRecord,
    OutboxItem,
    OutboxKind,
    OutboxState,
    parse_annotation,
)
from annotator.store.recovery import StoreError, open_connection
from api.client import new_idempotency_key
from api.models import AnnotationIn, AnnotationPatch, Lease, Receipt
from api.private_file import private_output

log = logging.getLogger("annotator.store")

DB_NAME = "local.db"
#: How long acknowledged submissions stay on this disk for the review list (they quote strangers);
#: `history_hours` in the config changes it for the TUI.
HISTORY_KEEP_S = 24 * 3600
#: The sync thread checkpoints the WAL (on a connection of its own) once this many commits have
#: piled up since the last time, so the TUI's commits neither run SQLite's automatic checkpoint
#: (1,000 pages: a multi-millisecond stall of the submit key every ~100 clips) nor keep growing
#: the WAL file: a commit that overwrites WAL pages already on disk is a cheap fdatasync, one that
#: appends must also journal the new file size.
CHECKPOINT_EVERY_COMMITS = 32
_CURRENT = "current_lease"
_LEASE_REQUEST = "lease_request:"

_OUTBOX_COLS = (
    "o.key, o.kind, o.clip_id, o.lease_id, o.fence, o.body_json, o.attempts, o.next_attempt_at, "
    "o.state, o.created_at, o.last_error, o.target_key, h.annotation_id, o.status_code, o.reason"
)
_OUTBOX_FROM = "outbox o LEFT JOIN history h ON h.key = o.target_key"


class AmendError(StoreError):
    """The submission cannot be amended (unknown, in conflict, or past its amend window)."""


class AlreadySubmitted(StoreError):
    """This lease already has a submission; amend it instead of submitting twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"this clip was already submitted (key {key}); amend it instead")
        self.key = key


def _ts(when: datetime | float | None) -> float:
    if when is None:
        return time.time()
    if isinstance(when, datetime):
        return when.timestamp()
    return float(when)


def _outbox_item(row: sqlite3.Row | tuple[object, ...], fields: FieldCipher) -> OutboxItem:
    (key, kind, clip_id, lease_id, fence, body, attempts, next_at, state, created, err, target,
     annotation_id, status_code, reason) = tuple(row)  # fmt: skip
    return OutboxItem(
        key=str(key),
        kind=OutboxKind(str(kind)),
        clip_id=str(clip_id),
        lease_id=str(lease_id),
        fence=int(str(fence)),
        body_json=fields.open(body, body_aad(str(key))),
        attempts=int(str(attempts)),
        next_attempt_at=float(str(next_at)),
        state=OutboxState(str(state)),
        created_at=float(str(created)),
        last_error=None if err is None else str(err),
        target_key=None if target is None else str(target),
        annotation_id=None if annotation_id is None else str(annotation_id),
        status_code=None if status_code is None else int(str(status_code)),
        reason=None if reason is None else str(reason),
    )


class LocalStore:
    """Thread-safe access to the local database. Open with `LocalStore.open()`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        recovered_from: Path | None,
        reason: str | None,
        *,
        fields: FieldCipher | None = None,
        history_keep_s: float = HISTORY_KEEP_S,
    ) -> None:
        if fields is None:
            fields = FieldCipher(load_cache_key()[0], retired_keys())
        self._fields = fields
        self.history_keep_s = history_keep_s
        self._conn = conn
        self._lock = threading.RLock()
        self._commits = 0
        self._checkpointed_at = 0
        self._side: sqlite3.Connection | None = None  # checkpoints only (see checkpoint_soon)
        self._side_lock = threading.Lock()
        self.path = path
        #: Where a damaged database was moved when this one was created in its place (for a banner).
        self.recovered_from = recovered_from
        self.recovery_reason = reason

    @classmethod
    def open(
        cls, path: Path | None = None, *, history_keep_s: float = HISTORY_KEEP_S
    ) -> LocalStore:
        """Open (creating, migrating, resealing or, if damaged, replacing) the store. Raises only
        StoreError, and only when no database can be created at all (or its key is unusable)."""
        if path is None:
            path = paths.ensure_private_dir(paths.data_dir()) / DB_NAME
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            key, _where = load_cache_key()
            retired = retired_keys()
        except Exception as e:  # noqa: BLE001 - CacheKeyError, OSError: the store cannot be used
            raise StoreError(f"the local store's key is unusable: {e}") from None
        conn, aside, reason = open_connection(path)
        path.chmod(0o600)
        store = cls(
            conn,
            path,
            aside,
            reason,
            fields=FieldCipher(key, retired),
            history_keep_s=history_keep_s,
        )
        try:
            store._reseal()
        except BaseException:
            store.close()
            raise
        if retired:
            discard_retired_keys()  # everything is sealed under the new key now
        return store

    @property
    def recovery_message(self) -> str | None:
        parts = []
        if self.recovered_from is not None:
            parts.append(
                f"The local database was damaged ({self.recovery_reason}). It was moved to "
                f"{self.recovered_from} and a fresh one started."
            )
        exposed = exposure_notice()
        if exposed:
            parts.append(exposed[0].upper() + exposed[1:] + ".")
        return " ".join(parts) or None

    # (table, key column, sealed column, associated data for a row's key)
    _SEALED = (
        ("leases", "lease_id", "lease_json", lease_aad),
        ("drafts", "lease_id", "transcript", lambda k: draft_aad(k, "transcript")),
        ("drafts", "lease_id", "note", lambda k: draft_aad(k, "note")),
        ("outbox", "key", "body_json", body_aad),
        ("history", "key", "body_json", body_aad),
        ("conflicts", "key", "body_json", body_aad),
    )

    def _reseal(self) -> int:
        """Seal every value still in the clear (a store from before sealing) or under a retired
        key, in one transaction; then empty the WAL and rewrite the file, so no page keeps the
        old plaintext. A handful of indexed reads when there is nothing to do."""
        changed = 0
        f = self._fields
        with self._tx() as c:
            for table, key_col, col, aad in self._SEALED:
                rows = c.execute(f"SELECT {key_col}, {col} FROM {table}").fetchall()  # noqa: S608
                redo = [
                    (f.seal(f.open(v, aad(str(k))), aad(str(k))), k)
                    for k, v in rows
                    if not f.is_current(v)
                ]
                c.executemany(
                    f"UPDATE {table} SET {col} = ? WHERE {key_col} = ?",  # noqa: S608
                    redo,
                )
                changed += len(redo)
        if changed:
            try:
                with self._lock:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._conn.execute("VACUUM")
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:
                # Another process holds the file. secure_delete already zeroed the old values in
                # the database; the WAL's old frames go at the next checkpoint.
                log.warning("resealed %d values; could not rewrite the file yet (%s)", changed, e)
        return changed

    def close(self) -> None:
        with self._side_lock:
            if self._side is not None:
                self._side.close()
                self._side = None
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._commits += 1

    def checkpoint_soon(self) -> None:
        """Checkpoint the WAL if enough commits piled up (see CHECKPOINT_EVERY_COMMITS).

        For the sync thread, never the TUI's: it runs on a second connection without the store's
        lock, and PASSIVE never waits for (nor blocks) the TUI's writes. Failing is harmless:
        SQLite's own automatic checkpoint still bounds the WAL."""
        if self._commits - self._checkpointed_at < CHECKPOINT_EVERY_COMMITS:
            return
        self._checkpointed_at = self._commits
        with self._side_lock:
            try:
                if self._side is None:
                    self._side = sqlite3.connect(
                        self.path, isolation_level=None, check_same_thread=False, timeout=0
                    )
                    self._side.execute("PRAGMA synchronous=FULL")
                self._side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def pragma(self, name: str) -> object:
        """A PRAGMA's value (for diagnostics and tests)."""
        return self._read(f"PRAGMA {name}")[0][0]

    # ------------------------------------------------------------------ leases

    def remember_lease(self, lease: Lease) -> None:
        """Record a lease (or refresh its expiry and fence when it is already known)."""
        with self._tx() as c:
            self._remember_lease(c, lease)

    def remember_current(self, lease: Lease) -> None:
        """`remember_lease` + `set_current` in one transaction (one fsync per clip shown)."""
        with self._tx() as c:
            self._remember_lease(c, lease)
            c.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (_CURRENT, lease.lease_id)
            )

    def _remember_lease(self, c: sqlite3.Connection, lease: Lease) -> None:
        c.execute(
            "INSERT INTO leases (lease_id, clip_id, fence, expires_at, lease_json, leased_at,"
            " seq) VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM leases))"
            " ON CONFLICT (lease_id) DO UPDATE SET fence = excluded.fence,"
            " expires_at = excluded.expires_at, lease_json = excluded.lease_json",
            (
                lease.lease_id,
                lease.clip.clip_id,
                lease.fence,
                lease.expires_at.timestamp(),
                self._fields.seal(lease.model_dump_json(), lease_aad(lease.lease_id)),
                time.time(),
            ),
        )

    def live_leases(self, now: datetime | float | None = None) -> list[Lease]:
        """Unexpired leases not yet submitted or released, oldest first."""
        rows = self._read(
            "SELECT lease_id, lease_json FROM leases WHERE state = 'live' AND expires_at > ?"
            " ORDER BY seq",
            (_ts(now),),
        )
        return [
            Lease.model_validate_json(self._fields.open(body, lease_aad(str(lid))))
            for lid, body in rows
        ]

    def forget_lease(self, lease_id: str) -> str | None:
        """Drop a released lease and its draft; returns its clip id (to delete the cached audio)."""
        with self._tx() as c:
            row = c.execute("SELECT clip_id FROM leases WHERE lease_id = ?", (lease_id,)).fetchone()
            c.execute("DELETE FROM leases WHERE lease_id = ?", (lease_id,))
            c.execute("DELETE FROM drafts WHERE lease_id = ?", (lease_id,))
            c.execute("DELETE FROM meta WHERE k = ? AND v = ?", (_CURRENT, lease_id))
        return None if row is None else str(row[0])

    def sweep_expired(self, now: datetime | float | None = None) -> list[str]:
        """Forget leases that expired unsubmitted (and their drafts); their clip ids, whose cached
        audio must now go. Old bookkeeping (finished leases, week-old acknowledged history) goes
        too. The sync engine calls this every minute."""
        at = _ts(now)
        with self._tx() as c:
            rows = c.execute(
                "SELECT lease_id, clip_id FROM leases WHERE state = 'live' AND expires_at <= ?",
                (at,),
            ).fetchall()
            ids = [(str(r[0]),) for r in rows]
            c.executemany("DELETE FROM drafts WHERE lease_id = ?", ids)
            c.executemany("UPDATE leases SET state = 'expired' WHERE lease_id = ?", ids)
            c.execute("DELETE FROM leases WHERE state != 'live' AND expires_at <= ?", (at - 86400,))
            # Acknowledged transcripts are the server's now; keep them only as long as the
            # review list needs (they quote strangers).
            c.execute(
                "DELETE FROM history WHERE state = ? AND submitted_at <= ? AND key NOT IN"
                " (SELECT target_key FROM outbox WHERE target_key IS NOT NULL)",
                (OutboxState.SENT, at - self.history_keep_s),
            )
        return [str(r[1]) for r in rows]

    def live_clip_ids(self, now: datetime | float | None = None) -> set[str]:
        """Clips whose audio the annotator may still need: live leases and unacknowledged work."""
        rows = self._read(
            "SELECT clip_id FROM leases WHERE state = 'live' AND expires_at > ?"
            " UNION SELECT clip_id FROM outbox WHERE state = 'pending'",
            (_ts(now),),
        )
        return {str(r[0]) for r in rows}

    def set_current(self, lease_id: str | None) -> None:
        """The clip on screen, so a restart after kill -9 reopens it."""
        with self._tx() as c:
            if lease_id is None:
                c.execute("DELETE FROM meta WHERE k = ?", (_CURRENT,))
            else:
                c.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (_CURRENT, lease_id))

    def current_lease_id(self, now: datetime | float | None = None) -> str | None:
        """The clip that was on screen, if its lease still lives."""
        rows = self._read(
            "SELECT m.v FROM meta m JOIN leases l ON l.lease_id = m.v"
            " WHERE m.k = ? AND l.state = 'live' AND l.expires_at > ?",
            (_CURRENT, _ts(now)),
        )
        return str(rows[0][0]) if rows else None

    # -- who holds which lease (the workbench's bookkeeping; see schema migration 3)

    def remember_leases(
        self, leases: Iterable[Lease], *, origin: LeaseOrigin, session: str | None
    ) -> None:
        """Record leases the moment they are granted, with who leased them and why."""
        now = time.time()
        with self._tx() as c:
            for lease in leases:
                c.execute(
                    "INSERT INTO leases (lease_id, clip_id, fence, expires_at, lease_json,"
                    " leased_at, seq, origin, session) VALUES (?, ?, ?, ?, ?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM leases), ?, ?)"
                    " ON CONFLICT (lease_id) DO UPDATE SET fence = excluded.fence,"
                    " expires_at = excluded.expires_at, lease_json = excluded.lease_json,"
                    " session = excluded.session",
                    (lease.lease_id, lease.clip.clip_id, lease.fence, lease.expires_at.timestamp(),
                     self._fields.seal(lease.model_dump_json(), lease_aad(lease.lease_id)), now,
                     str(origin), session),
                )  # fmt: skip

    def lease_records(self, now: datetime | float | None = None) -> list[LeaseRecord]:
        """Live leases (unexpired, not submitted or released) with their holder, oldest first."""
        rows = self._read(
            "SELECT l.lease_id, l.lease_json, l.origin, l.session, d.lease_id IS NOT NULL"
            " FROM leases l"
            " LEFT JOIN drafts d ON d.lease_id = l.lease_id"
            " WHERE l.state = 'live' AND l.expires_at > ? ORDER BY l.seq",
            (_ts(now),),
        )
        return [
            LeaseRecord(
                lease=Lease.model_validate_json(self._fields.open(body, lease_aad(str(lid)))),
                origin=LeaseOrigin(str(origin)),
                session=None if session is None else str(session),
                has_draft=bool(has_draft),
            )
            for lid, body, origin, session, has_draft in rows
        ]

    # -- lease requests in flight (a checkout killed between the server's grant and recording)

    def note_lease_request(self, key: str, session: str) -> None:
        """Before a checkout's lease request leaves: its key, so that if this process dies before
        every lease it was granted is recorded, the next checkout asks again under that key and
        the server answers with those leases instead of leaving them stranded for hours."""
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (_LEASE_REQUEST + key, session)
            )

    def lease_request_done(self, key: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM meta WHERE k = ?", (_LEASE_REQUEST + key,))

    def lease_requests(self) -> list[tuple[str, str]]:
        """(key, session) of every lease request noted and not done."""
        rows = self._read(
            "SELECT k, v FROM meta WHERE k LIKE ? ORDER BY rowid", (_LEASE_REQUEST + "%",)
        )
        return [(str(k).removeprefix(_LEASE_REQUEST), str(v)) for k, v in rows]

    def unclaimed_checkouts(self, now: datetime | float | None = None) -> int:
        """Live checked-out leases no session holds yet (one indexed count, no decryption): what
        an `annotator checkout` run beside an open annotator left for it to adopt."""
        rows = self._read(
            "SELECT COUNT(*) FROM leases WHERE state = 'live' AND origin = 'checkout'"
            " AND session IS NULL AND expires_at > ?",
            (_ts(now),),
        )
        return int(str(rows[0][0]))

    def claim_leases(self, lease_ids: Iterable[str], session: str) -> None:
        """This session holds these leases now (adopted at start)."""
        with self._tx() as c:
            c.executemany(
                "UPDATE leases SET session = ? WHERE lease_id = ?",
                [(session, lease_id) for lease_id in lease_ids],
            )

    def forget_leases(self, lease_ids: Iterable[str]) -> list[str]:
        """`forget_lease` for several leases in one transaction; the clip ids they had."""
        clip_ids: list[str] = []
        with self._tx() as c:
            for lease_id in lease_ids:
                row = c.execute(
                    "SELECT clip_id FROM leases WHERE lease_id = ?", (lease_id,)
                ).fetchone()
                if row is not None:
                    clip_ids.append(str(row[0]))
                c.execute("DELETE FROM leases WHERE lease_id = ?", (lease_id,))
                c.execute("DELETE FROM drafts WHERE lease_id = ?", (lease_id,))
                c.execute("DELETE FROM meta WHERE k = ? AND v = ?", (_CURRENT, lease_id))
        return clip_ids

    # ------------------------------------------------------------------ drafts

    def save_draft(self, draft: Draft) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO drafts (lease_id, clip_id, transcript, intent, flags_json,"
                " note, cursor_row, cursor_col, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    draft.lease_id,
                    draft.clip_id,
                    self._fields.seal(draft.transcript, draft_aad(draft.lease_id, "transcript")),
                    draft.intent,
                    json.dumps(list(draft.flags)),
                    self._fields.seal_opt(draft.note, draft_aad(draft.lease_id, "note")),
                    draft.cursor[0],
                    draft.cursor[1],
                    draft.updated_at or time.time(),
                ),
            )

    def load_draft(self, lease_id: str) -> Draft | None:
        rows = self._read(
            "SELECT lease_id, clip_id, transcript, intent, flags_json, note, cursor_row,"
            " cursor_col, updated_at FROM drafts WHERE lease_id = ?",
            (lease_id,),
        )
        if not rows:
            return None
        lid, clip, text, intent, flags, note, row, col, at = rows[0]
        return Draft(
            lease_id=str(lid),
            clip_id=str(clip),
            transcript=self._fields.open(text, draft_aad(lease_id, "transcript")),
            intent=None if intent is None else str(intent),
            flags=tuple(json.loads(str(flags))),
            note=self._fields.open_opt(note, draft_aad(lease_id, "note")),
            cursor=(int(str(row)), int(str(col))),
            updated_at=float(str(at)),
        )

    def delete_draft(self, lease_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM drafts WHERE lease_id = ?", (lease_id,))

    # ------------------------------------------------------------------ outbox

    def submit(self, annotation: AnnotationIn, *, clip_id: str) -> OutboxItem:
        """Queue a finished annotation: outbox row, history row, draft gone, lease done — one
        transaction, durable when this returns. The network is the sync engine's business."""
        key = new_idempotency_key()
        # Serialised once, here: every attempt sends these exact bytes under this key.
        body = annotation.model_dump_json(exclude_none=True)
        sealed = self._fields.seal(body, body_aad(key))
        now = time.time()
        with self._tx() as c:
            dup = c.execute(
                "SELECT key FROM history WHERE lease_id = ? AND state != ?",
                (annotation.lease_id, OutboxState.REJECTED),
            ).fetchone()
            if dup is not None:
                raise AlreadySubmitted(str(dup[0]))
            c.execute(
                "INSERT INTO outbox (key, kind, clip_id, lease_id, fence, body_json, attempts,"
                " next_attempt_at, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (key, OutboxKind.SUBMIT, clip_id, annotation.lease_id, annotation.fence, sealed,
                 now, OutboxState.PENDING, now),
            )  # fmt: skip
            c.execute(
                "INSERT INTO history (key, clip_id, lease_id, body_json, state, submitted_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, clip_id, annotation.lease_id, sealed, OutboxState.PENDING, now),
            )
            c.execute("DELETE FROM drafts WHERE lease_id = ?", (annotation.lease_id,))
            c.execute(
                "UPDATE leases SET state = 'submitted' WHERE lease_id = ?", (annotation.lease_id,)
            )
            c.execute("DELETE FROM meta WHERE k = ? AND v = ?", (_CURRENT, annotation.lease_id))
        return OutboxItem(
            key=key,
            kind=OutboxKind.SUBMIT,
            clip_id=clip_id,
            lease_id=annotation.lease_id,
            fence=annotation.fence,
            body_json=body,
            attempts=0,
            next_attempt_at=now,
            state=OutboxState.PENDING,
            created_at=now,
        )

    def pending(self, limit: int = 1000, now: datetime | float | None = None) -> list[OutboxItem]:
        """Due outbox rows (read-only view; the engine uses `claim_due`)."""
        rows = self._read(
            f"SELECT {_OUTBOX_COLS} FROM {_OUTBOX_FROM}"  # noqa: S608 - constants only
            " WHERE o.state = ? AND o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?",
            (OutboxState.PENDING, _ts(now), limit),
        )
        return [_outbox_item(r, self._fields) for r in rows]

    def claim_due(
        self,
        limit: int,
        now: datetime | float | None = None,
        *,
        kind: OutboxKind = OutboxKind.SUBMIT,
        force: bool = False,
    ) -> list[OutboxItem]:
        """Take due rows for one send attempt, counting the attempt before any byte leaves.

        Amendments are only due once their submission's annotation id is known. `force` ignores
        the backoff schedule (an explicit `annotator sync`)."""
        ready = "o.kind = 'submit'" if kind is OutboxKind.SUBMIT else "h.annotation_id IS NOT NULL"
        with self._tx() as c:
            rows = c.execute(
                f"SELECT {_OUTBOX_COLS} FROM {_OUTBOX_FROM}"  # noqa: S608 - constants only
                " WHERE o.state = ? AND o.kind = ?"
                f" AND (? OR o.next_attempt_at <= ?) AND {ready} ORDER BY o.seq LIMIT ?",
                (OutboxState.PENDING, kind, force, _ts(now), limit),
            ).fetchall()
            c.executemany(
                "UPDATE outbox SET attempts = attempts + 1 WHERE key = ?", [(r[0],) for r in rows]
            )
        return [replace(_outbox_item(r, self._fields), attempts=int(r[6]) + 1) for r in rows]

    def next_due_at(self) -> float | None:
        """When the earliest sendable row becomes due (epoch seconds), or None when none waits."""
        rows = self._read(
            f"SELECT MIN(o.next_attempt_at) FROM {_OUTBOX_FROM}"  # noqa: S608 - constants only
            " WHERE o.state = ?"
            " AND (o.kind = 'submit' OR h.annotation_id IS NOT NULL)",
            (OutboxState.PENDING,),
        )
        value = rows[0][0]
        return None if value is None else float(str(value))

    def reschedule_pending(self, now: datetime | float | None = None) -> None:
        """Make every waiting row due now (the server answers again: no need to sit out backoff)."""
        at = _ts(now)
        with self._tx() as c:
            c.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE state = ? AND next_attempt_at > ?",
                (at, OutboxState.PENDING, at),
            )

    def mark_sent(self, key: str, receipt: Receipt) -> str | None:
        """The server stored it. Returns the clip id (its cached audio may go)."""
        done = self.mark_sent_many([(key, receipt)])
        return done[0] if done else None

    def mark_sent_many(self, acks: Iterable[tuple[str, Receipt]]) -> list[str]:
        """Acknowledge many submissions in one transaction (one fsync for a whole batch)."""
        acks = list(acks)
        with self._tx() as c:
            c.executemany(
                "UPDATE history SET state = ?, annotation_id = ?, status = ?, amend_until = ?,"
                " error = NULL WHERE key = ?",
                [
                    (
                        OutboxState.SENT,
                        r.annotation_id,
                        r.status.value,
                        None if r.amend_until is None else r.amend_until.isoformat(),
                        k,
                    )
                    for k, r in acks
                ],
            )
            c.executemany("DELETE FROM outbox WHERE key = ?", [(k,) for k, _ in acks])
        self.checkpoint_soon()  # the sync thread, right after the server took the work
        return [r.clip_id for _, r in acks]

    def mark_amend_sent(self, key: str, amend_until: datetime | None = None) -> None:
        with self._tx() as c:
            row = c.execute("SELECT target_key FROM outbox WHERE key = ?", (key,)).fetchone()
            c.execute("DELETE FROM outbox WHERE key = ?", (key,))
            if row is not None and amend_until is not None:
                c.execute(
                    "UPDATE history SET amend_until = ?, error = NULL WHERE key = ?",
                    (amend_until.isoformat(), row[0]),
                )

    def mark_retry(self, key: str, error: str, next_attempt_at: datetime | float) -> None:
        self.mark_retry_many([key], error, next_attempt_at)

    def mark_retry_many(
        self, keys: Sequence[str], error: str, next_attempt_at: datetime | float
    ) -> None:
        at = _ts(next_attempt_at)
        with self._tx() as c:
            c.executemany(
                "UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE key = ? AND state = ?",
                [(error, at, k, OutboxState.PENDING) for k in keys],
            )

    def mark_rejected(self, key: str, status: int, reason: str, message: str) -> None:
        """The server refused it for good (a 4xx other than 409). Kept and shown, never dropped."""
        with self._tx() as c:
            self._reject(c, key, status, reason, message)

    def _reject(
        self, c: sqlite3.Connection, key: str, status: int, reason: str, message: str
    ) -> None:
        row = c.execute("SELECT kind, target_key FROM outbox WHERE key = ?", (key,)).fetchone()
        if row is None:
            return
        c.execute(
            "UPDATE outbox SET state = ?, status_code = ?, reason = ?, last_error = ?"
            " WHERE key = ?",
            (OutboxState.REJECTED, status, reason, message, key),
        )
        if row[0] == OutboxKind.SUBMIT:
            c.execute(
                "UPDATE history SET state = ?, error = ? WHERE key = ?",
                (OutboxState.REJECTED, f"{status} {reason}: {message}", key),
            )
            self._orphan_amendments(c, key)
        else:
            c.execute(
                "UPDATE history SET error = ? WHERE key = ?",
                (f"amendment refused: {status} {reason}: {message}", row[1]),
            )

    def _orphan_amendments(self, c: sqlite3.Connection, target: str) -> None:
        rows = c.execute(
            "SELECT key FROM outbox WHERE target_key = ? AND state = ?",
            (target, OutboxState.PENDING),
        ).fetchall()
        for (k,) in rows:
            self._reject(c, str(k), 0, "target_not_stored", "the submission it amends was refused")

    def mark_conflict(self, key: str, reason: str, message: str) -> None:
        """409: someone else completed the clip (or the fence is stale). Moved to conflicts."""
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                "SELECT kind, clip_id, lease_id, body_json FROM outbox WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return
            if row[0] != OutboxKind.SUBMIT:
                self._reject(c, key, 409, reason, message)
                return
            c.execute(
                "INSERT OR REPLACE INTO conflicts (key, clip_id, lease_id, body_json, reason,"
                " message, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, row[1], row[2], row[3], reason, message, now),
            )
            c.execute("DELETE FROM outbox WHERE key = ?", (key,))
            c.execute(
                "UPDATE history SET state = ?, error = ? WHERE key = ?",
                (OutboxState.CONFLICT, f"409 {reason}: {message}", key),
            )
            self._orphan_amendments(c, key)

    def outbox_count(self) -> int:
        """Rows still waiting to reach the server."""
        return int(str(self._read("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0]))

    def counts(self, now: datetime | float | None = None) -> dict[str, int]:
        """How much of each kind of state is held (for `sync --status` and `purge`)."""
        row = self._read(
            "SELECT (SELECT COUNT(*) FROM leases WHERE state = 'live' AND expires_at > ?),"
            " (SELECT COUNT(*) FROM drafts),"
            " (SELECT COUNT(*) FROM outbox WHERE state = 'pending'),"
            " (SELECT COUNT(*) FROM outbox WHERE state = 'rejected'),"
            " (SELECT COUNT(*) FROM conflicts),"
            " (SELECT COUNT(*) FROM history)",
            (_ts(now),),
        )[0]
        names = ("leases", "drafts", "pending", "rejected", "conflicts", "history")
        return {name: int(str(v)) for name, v in zip(names, row, strict=True)}

    def conflict_count(self) -> int:
        return int(str(self._read("SELECT COUNT(*) FROM conflicts")[0][0]))

    def unsynced_count(self) -> int:
        """Work the server does not hold: waiting, refused or in conflict (purge refuses on it)."""
        rows = self._read(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'rejected'))"
            " + (SELECT COUNT(*) FROM conflicts)"
        )
        return int(str(rows[0][0]))

    def outbox(self, state: OutboxState | None = None, limit: int = 10_000) -> list[OutboxItem]:
        """Outbox rows in order, optionally of one state (for `sync --status`)."""
        where = "" if state is None else "WHERE o.state = ?"
        args: tuple[object, ...] = () if state is None else (state.value,)
        rows = self._read(
            f"SELECT {_OUTBOX_COLS} FROM {_OUTBOX_FROM} {where} ORDER BY o.seq LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [_outbox_item(r, self._fields) for r in rows]

    def rejected(self) -> list[OutboxItem]:
        return self.outbox(OutboxState.REJECTED)

    def conflicts(self) -> list[ConflictItem]:
        rows = self._read(
            "SELECT key, clip_id, lease_id, body_json, reason, message, at FROM conflicts"
            " ORDER BY at"
        )
        return [
            ConflictItem(
                key=str(k),
                clip_id=str(clip),
                lease_id=str(lease),
                annotation=parse_annotation(self._fields.open(body, body_aad(str(k)))),
                reason=str(reason),
                message=str(msg),
                at=float(str(at)),
            )
            for k, clip, lease, body, reason, msg, at in rows
        ]

    def export_conflicts_jsonl(self, path: Path) -> int:
        """Write the conflicts as JSON lines (0600: they hold transcripts); returns the count."""
        items = self.conflicts()
        # A random O_EXCL|O_NOFOLLOW 0600 temp file renamed over `path`; a symlink there is refused
        # (PrivateFileError, an OSError naming the path).
        with private_output(path) as f:
            for it in items:
                record = {
                    "idempotency_key": it.key,
                    "clip_id": it.clip_id,
                    "lease_id": it.lease_id,
                    "reason": it.reason,
                    "message": it.message,
                    "at": datetime.fromtimestamp(it.at, UTC).isoformat(),
                    "annotation": it.annotation.model_dump(mode="json", exclude_none=True),
                }
                f.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
        return len(items)

    # ------------------------------------------------------------------ history and amendments

    def history(self, limit: int = 20) -> list[HistoryItem]:
        """The latest submissions, newest first."""
        rows = self._read(
            "SELECT h.key, h.clip_id, h.lease_id, h.body_json, h.state, h.submitted_at,"
            " h.annotation_id, h.status, h.amend_until, h.error,"
            " EXISTS (SELECT 1 FROM outbox o WHERE o.target_key = h.key AND o.state = 'pending')"
            " FROM history h ORDER BY h.seq DESC LIMIT ?",
            (limit,),
        )
        return [
            HistoryItem(
                key=str(k),
                clip_id=str(clip),
                lease_id=str(lease),
                annotation=parse_annotation(self._fields.open(body, body_aad(str(k)))),
                state=OutboxState(str(state)),
                submitted_at=float(str(at)),
                annotation_id=None if aid is None else str(aid),
                status=None if status is None else str(status),
                amend_until=None if until is None else str(until),
                amend_pending=bool(pending),
                error=None if err is None else str(err),
            )
            for k, clip, lease, body, state, at, aid, status, until, err, pending in rows
        ]

    def amend(self, key: str, annotation: AnnotationIn, now: datetime | float | None = None) -> str:
        """Change a submission's content. Returns the key of the outbox row that carries it.

        While no attempt has left the machine the queued body is simply replaced (same key: the
        server never saw the old one). Once an attempt may have reached the server, replacing the
        body under the same key would be refused (422), so the change is queued as a PATCH that the
        engine sends once the submission's annotation id is known. The amend window is the
        server's to judge (its clock, not ours): a late amendment comes back rejected, visibly;
        `HistoryItem.amend_until` lets the TUI grey out undo before that."""
        at = _ts(now)
        with self._tx() as c:
            h = c.execute(
                "SELECT lease_id, body_json, state FROM history WHERE key = ?", (key,)
            ).fetchone()
            if h is None:
                raise AmendError(f"no submission with key {key}")
            lease_id, old_body, state = h
            if annotation.lease_id != lease_id:
                raise AmendError("an amendment must keep the submission's lease")
            if state in (OutboxState.CONFLICT, OutboxState.REJECTED):
                raise AmendError(f"this submission is in state {state}; it cannot be amended")
            old = parse_annotation(self._fields.open(old_body, body_aad(key)))
            # Lease, fence and timings are facts of the original submission, not the annotator's.
            merged = old.model_copy(
                update={
                    "transcript": annotation.transcript,
                    "intent": annotation.intent,
                    "flags": list(annotation.flags),
                    "note": annotation.note,
                }
            )
            body = AnnotationIn.model_validate(merged.model_dump()).model_dump_json(
                exclude_none=True
            )
            sealed = self._fields.seal(body, body_aad(key))
            c.execute("UPDATE history SET body_json = ? WHERE key = ?", (sealed, key))
            unsent = c.execute(
                "SELECT 1 FROM outbox WHERE key = ? AND state = ? AND attempts = 0",
                (key, OutboxState.PENDING),
            ).fetchone()
            if unsent is not None:
                c.execute("UPDATE outbox SET body_json = ? WHERE key = ?", (sealed, key))
                return key
            patch = AnnotationPatch(
                transcript=annotation.transcript,
                intent=annotation.intent,
                flags=list(annotation.flags),
                note=annotation.note,
            ).model_dump_json()
            queued = c.execute(
                "SELECT key FROM outbox WHERE target_key = ? AND state = ? AND attempts = 0",
                (key, OutboxState.PENDING),
            ).fetchone()
            if queued is not None:
                c.execute(
                    "UPDATE outbox SET body_json = ? WHERE key = ?",
                    (self._fields.seal(patch, body_aad(str(queued[0]))), queued[0]),
                )
                return str(queued[0])
            clip_id = c.execute("SELECT clip_id FROM history WHERE key = ?", (key,)).fetchone()[0]
            new_key = new_idempotency_key()
            c.execute(
                "INSERT INTO outbox (key, kind, clip_id, lease_id, fence, body_json, attempts,"
                " next_attempt_at, state, created_at, target_key)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                (new_key, OutboxKind.AMEND, clip_id, lease_id, old.fence,
                 self._fields.seal(patch, body_aad(new_key)), at, OutboxState.PENDING, at, key),
            )  # fmt: skip
            return new_key

    # ------------------------------------------------------------------ purge

    def aside_copies(self) -> list[Path]:
        """Damaged copies `recovery.py` moved aside (with their WAL/SHM), and a kept WAL link."""
        base = self.path.name
        found = [
            p
            for p in self.path.parent.iterdir()
            if p.name.startswith(base + ".broken-") or p.name == base + "-wal.keep"
        ]
        return sorted(found)

    def purge(self) -> int:
        """Forget everything: leases, drafts, outbox, history, conflicts — and every other copy:
        damaged databases moved aside and their WAL/SHM files. secure_delete zeroes the freed
        pages, the checkpoint empties the WAL and VACUUM rewrites the file, so no transcript
        lingers on disk. Returns how many aside files were deleted."""
        with self._tx() as c:
            for table in ("drafts", "outbox", "history", "conflicts", "leases", "meta"):
                c.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        aside = self.aside_copies()
        for p in aside:
            p.unlink(missing_ok=True)
        # The live WAL is empty now; its -shm is a page index (no row content) that another
        # connection may have mapped, so it is left to SQLite.
        return len(aside)
