"""Retention of clip audio on the server (issue 10 finding 10).

Two rules, both applied by deleting the bytes from the repository's `AudioStore` and then
marking the clip (`clips.audio_deleted_at`, `clips.audio_deleted_reason`; see
`api.server.migrations`):

- **Accidental activations** (`not_device_directed`): once a clip has all the annotations it
  needs (`completed >= needed`) and every one of them says `not_device_directed`, its audio is
  deleted. `QueueService` asks right after such a submission (`after_submit`); the sweep
  catches anything missed (a crash between the commit and the deletion).
- **Age** (`serve --retain-audio-days N`): audio ingested more than N days ago is deleted, annotated
  or not. Such a clip leaves the queue (the claim skips deleted clips) and a live lease on it
  answers 410 `audio_deleted` for its audio.

The bytes go first, the mark after: a crash between leaves an unmarked clip whose bytes are
gone, which the next sweep finds again and marks (deleting absent bytes is a no-op). Exports
carry `audio_deleted_at`, and anything that exports or serves audio must check the column.

The sweep runs in every serving process every `retention_sweep_s` (idempotent, so several
processes sweeping is harmless), with time from the server's injectable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from api.server.clock import Clock
from api.server.sql_repo import SqlRepository, ts

log = logging.getLogger("annotator.server")

NOT_DEVICE_DIRECTED = "not_device_directed"
REASON_NOT_DEVICE_DIRECTED = "not_device_directed"
REASON_AGE = "retention_days"

#: Completed clips whose every annotation says not_device_directed, audio still kept.
_ACCIDENTAL_WHERE = f"""
       c.audio_deleted_at IS NULL
   AND c.completed >= c.needed
   AND EXISTS (SELECT 1 FROM annotations a WHERE a.clip_id = c.clip_id)
   AND NOT EXISTS (SELECT 1 FROM annotations a
                    WHERE a.clip_id = c.clip_id AND a.intent != '{NOT_DEVICE_DIRECTED}')
"""  # noqa: S608 - our own constant


@dataclass(frozen=True, slots=True)
class SweepReport:
    not_device_directed: int
    by_age: int


class Retention:
    """The retention rules over one `SqlRepository`."""

    def __init__(self, repo: SqlRepository, clock: Clock, retain_days: float | None) -> None:
        self.repo = repo
        self.clock = clock
        self.retain_days = retain_days

    def _delete(self, rows: list[Any], reason: str) -> int:
        done = 0
        t_now = ts(self.clock.now())
        for clip_id, sha256 in rows:
            self.repo.audio.delete(sha256)
            with self.repo._write(durable=True) as conn:
                cursor = self.repo._x(
                    conn,
                    "UPDATE clips SET audio_deleted_at = ?, audio_deleted_reason = ?"
                    " WHERE clip_id = ? AND audio_deleted_at IS NULL",
                    (t_now, reason, clip_id),
                )
            done += int(cursor.rowcount)
        return done

    def after_submit(self, clip_id: str) -> bool:
        """Delete the clip's audio now if the accidental-activation rule says so."""
        with self.repo._read() as conn:
            rows = self.repo._x(
                conn,
                "SELECT c.clip_id, c.sha256 FROM clips c"  # noqa: S608 - our own constant
                f" WHERE c.clip_id = ? AND {_ACCIDENTAL_WHERE}",
                (clip_id,),
            ).fetchall()
        return self._delete(rows, REASON_NOT_DEVICE_DIRECTED) > 0

    def sweep(self) -> SweepReport:
        with self.repo._read() as conn:
            accidental = self.repo._x(
                conn,
                f"SELECT c.clip_id, c.sha256 FROM clips c WHERE {_ACCIDENTAL_WHERE}",  # noqa: S608
            ).fetchall()
            old: list[Any] = []
            if self.retain_days is not None:
                cutoff = ts(self.clock.now() - timedelta(days=self.retain_days))
                old = self.repo._x(
                    conn,
                    "SELECT clip_id, sha256 FROM clips"
                    " WHERE audio_deleted_at IS NULL AND created_at < ?",
                    (cutoff,),
                ).fetchall()
        report = SweepReport(
            self._delete(accidental, REASON_NOT_DEVICE_DIRECTED), self._delete(old, REASON_AGE)
        )
        if report.not_device_directed or report.by_age:
            log.info(
                "retention: deleted the audio of %d not_device_directed and %d older clip(s)",
                report.not_device_directed,
                report.by_age,
            )
        return report

    def is_deleted(self, clip_id: str) -> bool:
        with self.repo._read() as conn:
            row = self.repo._one(
                conn, "SELECT audio_deleted_at FROM clips WHERE clip_id = ?", (clip_id,)
            )
        return row is not None and row[0] is not None

    @contextlib.asynccontextmanager
    async def sweeping(self, every_s: float) -> AsyncIterator[None]:
        """Run `sweep` now and every `every_s` seconds (on a worker thread) while inside."""

        async def loop() -> None:
            while True:
                try:
                    await asyncio.to_thread(self.sweep)
                except Exception as e:  # noqa: BLE001 - a database hiccup: try again next round
                    log.warning("retention sweep failed: %s", type(e).__name__)
                await asyncio.sleep(every_s)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
