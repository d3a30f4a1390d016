"""Versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.

Append a new entry to MIGRATIONS to change the schema; never edit a shipped one, because an
annotator's disk may hold an outbox written by any earlier version.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: leases, drafts, outbox, history, conflicts, a small key/value table.
    """
    CREATE TABLE meta (
        k TEXT PRIMARY KEY,
        v TEXT NOT NULL
    );
    CREATE TABLE leases (
        lease_id TEXT PRIMARY KEY,
        clip_id TEXT NOT NULL,
        fence INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        lease_json TEXT NOT NULL,
        leased_at REAL NOT NULL,
        seq INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'live'
    );
    CREATE INDEX leases_live ON leases (state, seq);
    CREATE TABLE drafts (
        lease_id TEXT PRIMARY KEY,
        clip_id TEXT NOT NULL,
        transcript TEXT NOT NULL,
        intent TEXT,
        flags_json TEXT NOT NULL,
        note TEXT,
        cursor_row INTEGER NOT NULL,
        cursor_col INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        clip_id TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        fence INTEGER NOT NULL,
        body_json TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_error TEXT,
        target_key TEXT,
        status_code INTEGER,
        reason TEXT
    );
    CREATE INDEX outbox_due ON outbox (state, kind, next_attempt_at);
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        clip_id TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        body_json TEXT NOT NULL,
        state TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        annotation_id TEXT,
        status TEXT,
        amend_until TEXT,
        error TEXT
    );
    CREATE TABLE conflicts (
        key TEXT PRIMARY KEY,
        clip_id TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        body_json TEXT NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        at REAL NOT NULL
    );
    """,
    # 2: submit's duplicate check and history's pending-amendment look-up ran full scans that
    # grew with the shift (0.7 ms per submit, 44 ms for history(20) at 10,000 rows).
    """
    CREATE INDEX history_lease ON history (lease_id);
    CREATE INDEX outbox_target ON outbox (target_key) WHERE target_key IS NOT NULL;
    """,
    # 3: who holds each lease. `origin`: 'prefetch' (the TUI leased it to keep clips ready; given
    # back at quit unless it holds a draft) or 'checkout' (leased for offline work; kept until
    # synced or `annotator sync --release`). `session`: the TUI session holding it
    # (host:pid:start), so the next session adopts what a killed one left leased to nobody.
    """
    ALTER TABLE leases ADD COLUMN origin TEXT NOT NULL DEFAULT 'checkout';
    ALTER TABLE leases ADD COLUMN session TEXT;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The file was written by a newer annotator: this one must not touch it."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version found before migrating."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"schema version {found} is newer than this annotator's {SCHEMA_VERSION}"
        )
    for version in range(found, SCHEMA_VERSION):
        # executescript commits first, so each migration runs in its own explicit transaction and a
        # crash mid-way leaves the previous version intact.
        script = MIGRATIONS[version]
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
        )
    return found
