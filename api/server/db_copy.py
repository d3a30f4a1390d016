"""`annotator db copy`: a whole queue from one database into a new, empty one (SQLite to
PostgreSQL, or back), ids, fences, leases, tokens and audio included.

Both sides are opened (so migrated) to the same schema version first, so their tables match
column for column (`api.server.migrations`). Audio goes first, through the two audio stores, then
the tables parents-first, in durable batches. The target must hold no clips, annotations, tokens
or leases: copying into a live queue would mix two queues' ids. Stop the servers on the source
while copying (a clip leased meanwhile would be copied as leased, which only delays it).
"""

from __future__ import annotations

from api.server.migrations import COPIED_TABLES
from api.server.repository import Repository
from api.server.sql_repo import SqlRepository

BATCH_ROWS = 1000
AUDIO_BATCH = 200


class NotEmpty(Exception):
    """The target database already holds a queue."""


def copy_queue(source: Repository, target: Repository) -> dict[str, int]:
    """Copy everything; rows copied per table (and clips' audio as "audio")."""
    if not isinstance(source, SqlRepository) or not isinstance(target, SqlRepository):
        raise TypeError("db copy works between the SQL backends")
    if not target.is_empty():
        raise NotEmpty("it already holds a queue; give a new, empty database")
    counts = {"audio": _copy_audio(source, target)}
    for table in COPIED_TABLES:
        columns = source.columns(table)
        missing = set(columns) - set(target.columns(table))
        if missing:  # pragma: no cover - both sides are at the same schema version
            raise RuntimeError(f"{table}: the target lacks {sorted(missing)}")
        counts[table] = 0
        batch: list[tuple[object, ...]] = []
        # meta: the target's own rows (made by its migrations) give way to the source's.
        replace = table == "meta"
        for row in source.table_rows(table):
            batch.append(tuple(row))
            if len(batch) >= BATCH_ROWS:
                target.insert_rows(table, columns, batch, replace=replace)
                counts[table] += len(batch)
                batch, replace = [], False
        if batch or replace:
            target.insert_rows(table, columns, batch, replace=replace)
            counts[table] += len(batch)
    target.after_copy()
    return counts


def _copy_audio(source: SqlRepository, target: SqlRepository) -> int:
    count = 0
    pending: list[tuple[str, bytes]] = []
    column = source.columns("clips").index("sha256")
    for row in source.table_rows("clips"):
        sha256 = str(row[column])
        pending.append((sha256, source.audio.read(sha256)))
        if len(pending) >= AUDIO_BATCH:
            target.audio.put_many(pending)
            count += len(pending)
            pending = []
    target.audio.put_many(pending)
    return count + len(pending)
