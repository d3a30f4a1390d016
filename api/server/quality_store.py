"""Storage for quality (issue 12): gold answers, gold claims, adjudications, final annotations.

Both backends, over `SqlRepository`'s helpers (`_write`, `_read`, `_x`, `_one`, `_sql`); the tables
are the quality migration's (`api.server.migrations`). The decisions are
`api.server.quality_rules`' pure functions.

Gold clips are ordinary queued clips with a row in `gold_clips`: the normal claim never picks
them (`sql_repo.CLAIMABLE_WHERE`); `claim_gold` leases one the person has not annotated, at the
rate the service deals them. A gold lease is the same lease (same fence and expiry rules), so its
clip's `needed` is raised to one more than its annotations when it is leased: the submission rules
then accept it as any other, and gold clips are annotated by everyone who is dealt one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.server.audio_store import AudioMissing
from api.server.errors import Rejection, not_found
from api.server.quality_rules import (
    DEFAULT_LIMITS,
    Expected,
    Label,
    Thresholds,
    by_clip,
    consensus,
    disagreements,
)
from api.server.repository import LeaseGrant
from api.server.sql_repo import OPEN_TO_ME_WHERE, SqlRepository, clip_info, dt, new_id, ts

_GOLD_CLAIM_SQL = f"""
SELECT c.seq, c.fence, c.completed, c.clip_id, c.duration_s, c.sample_rate, c.channels, c.locale,
       c.sha256, c.asr_hint, c.asr_words
  FROM clips AS c JOIN gold_clips AS g ON g.clip_id = c.clip_id
 WHERE {OPEN_TO_ME_WHERE}
 ORDER BY random()
 LIMIT ?
"""  # noqa: S608 - our own constants

_LABEL_SQL = """
SELECT a.annotation_id, a.clip_id, a.annotator, a.transcript, a.intent, a.flags, a.created_at,
       a.active_seconds, c.locale
  FROM annotations a JOIN clips c ON c.clip_id = a.clip_id
"""

#: Finished, non-gold clips that have no adjudication yet.
_UNSETTLED_WHERE = """
 WHERE c.completed >= c.needed
   AND NOT EXISTS (SELECT 1 FROM adjudications j WHERE j.clip_id = c.clip_id)
   AND NOT EXISTS (SELECT 1 FROM gold_clips g WHERE g.clip_id = c.clip_id)
"""

AUTO = "auto"


@functools.lru_cache(maxsize=4096)
def _flags(raw: str) -> frozenset[str]:
    # A handful of distinct flag lists ("[]" nearly always): parsed once each, not per row.
    return frozenset(json.loads(raw))


def label_from_row(row: Sequence[Any]) -> Label:
    aid, clip_id, annotator, transcript, intent, flags, created, active, locale = row
    return Label(
        annotation_id=aid,
        clip_id=clip_id,
        annotator=annotator,
        transcript=transcript,
        intent=intent,
        flags=_flags(flags),
        created_at=float(created),
        active_seconds=None if active is None else float(active),
        locale=locale,
    )


@dataclass(frozen=True, slots=True)
class GoldAnswer:
    clip_id: str
    expected: Expected


@dataclass(frozen=True, slots=True)
class ReviewCase:
    clip_id: str
    locale: str
    duration_s: float
    reasons: list[str]
    labels: list[Label]
    notes: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class FinalRow:
    clip_id: str
    locale: str
    duration_s: float
    sha256: str
    media_type: str
    transcript: str
    intent: str
    flags: list[str]
    decided_by: str
    from_annotations: list[str]
    #: Some annotation of the clip raised an escalation (its audio stays out of exports).
    escalated: bool


class QualityStore:
    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    # ------------------------------------------------------------------ gold

    def find_clips(self, name_or_sha: str) -> list[str]:
        """Clip ids whose ingest source name, or served-bytes sha256, is `name_or_sha`."""
        with self.repo._read() as conn:
            rows = self.repo._x(
                conn,
                "SELECT clip_id FROM clips WHERE sha256 = ? OR source_name = ? ORDER BY seq",
                (name_or_sha.lower(), name_or_sha),
            ).fetchall()
        return [r[0] for r in rows]

    def put_gold(self, answers: Sequence[GoldAnswer], now: datetime) -> int:
        with self.repo._write(durable=True) as conn:
            for a in answers:
                e = a.expected
                self.repo._x(
                    conn,
                    "INSERT INTO gold_clips (clip_id, transcript, intent, flags, imported_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (clip_id) DO UPDATE SET"
                    " transcript = excluded.transcript, intent = excluded.intent,"
                    " flags = excluded.flags, imported_at = excluded.imported_at",
                    (a.clip_id, e.transcript, e.intent, json.dumps(sorted(e.flags)), ts(now)),
                )
                # A gold clip's earlier adjudication no longer applies: gold is its answer; nor
                # do its agreement figures (gold clips are not in agreement).
                self.repo._x(conn, "DELETE FROM adjudications WHERE clip_id = ?", (a.clip_id,))
                self.repo._x(
                    conn,
                    "INSERT INTO quality_stale (clip_id) VALUES (?) ON CONFLICT DO NOTHING",
                    (a.clip_id,),
                )
        return len(answers)

    def gold(self) -> dict[str, Expected]:
        with self.repo._read() as conn:
            rows = self.repo._x(
                conn, "SELECT clip_id, transcript, intent, flags FROM gold_clips"
            ).fetchall()
        return {r[0]: Expected(r[1], r[2], frozenset(json.loads(r[3]))) for r in rows}

    def _any_gold(self) -> bool:
        # A read, so that a queue without gold never opens a write transaction for it.
        with self.repo._read() as conn:
            return self.repo._one(conn, "SELECT 1 FROM gold_clips LIMIT 1") is not None

    def claim_gold(
        self,
        annotator: str,
        count: int,
        ttl_s: int,
        now: datetime,
        *,
        request_key: str | None = None,
    ) -> list[LeaseGrant]:
        """Lease up to `count` gold clips `annotator` has not annotated (nor skipped), exactly as
        the normal claim leases a clip (fence bumped, lease row, durable)."""
        if count <= 0 or not self._any_gold():
            return []
        t_now = ts(now)
        expires = t_now + ttl_s
        grants: list[LeaseGrant] = []
        repo = self.repo
        with repo._write(durable=True) as conn:
            picked = repo._x(
                conn,
                _GOLD_CLAIM_SQL + repo.FOR_UPDATE,
                (t_now, annotator, annotator, count),
            ).fetchall()
            for seq, fence, completed, *info in picked:
                lease_id = new_id()
                fence = int(fence) + 1
                moved = repo._x(
                    conn,
                    "UPDATE clips SET fence = ?, current_lease = ?, leased_until = ?, needed = ?"
                    " WHERE seq = ? AND fence = ?",
                    (fence, lease_id, expires, int(completed) + 1, seq, fence - 1),
                )
                if moved.rowcount != 1:  # someone else's claim got there first
                    continue
                repo._x(
                    conn,
                    "INSERT INTO leases (lease_id, clip_id, annotator, fence, created_at,"
                    " expires_at, request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (lease_id, info[0], annotator, fence, t_now, expires, request_key),
                )
                grants.append(LeaseGrant(lease_id, fence, dt(expires), clip_info(tuple(info))))
        return grants

    # ------------------------------------------------------------------ annotations

    def labels(self) -> list[Label]:
        with self.repo._read() as conn:
            rows = self.repo._x(conn, _LABEL_SQL).fetchall()
        return [label_from_row(r) for r in rows]

    # ------------------------------------------------------------------ adjudication

    def settle(self, now: datetime, limits: Thresholds = DEFAULT_LIMITS) -> tuple[int, int]:
        """Decide every finished clip that has no adjudication: agreeing ones become final
        (`decided_by` 'auto'), the others wait for a reviewer. An automatic decision (or a
        waiting case) whose annotations were amended since is decided again. (finals, reviews)."""
        repo = self.repo
        finals = reviews = 0
        with repo._write(durable=True) as conn:
            repo._x(
                conn,
                "DELETE FROM adjudications WHERE (state = 'review' OR decided_by = ?)"
                " AND EXISTS (SELECT 1 FROM annotations a WHERE a.clip_id = adjudications.clip_id"
                "             AND a.amended_at > adjudications.decided_at)",
                (AUTO,),
            )
            rows = repo._x(conn, _LABEL_SQL + _UNSETTLED_WHERE).fetchall()
            for clip_id, group in by_clip(label_from_row(r) for r in rows).items():
                reasons = disagreements(group, limits)
                ids = json.dumps(sorted(x.annotation_id for x in group))
                if reasons:
                    reviews += 1
                    repo._x(
                        conn,
                        "INSERT INTO adjudications (clip_id, state, reasons, from_annotations,"
                        " decided_at) VALUES (?, 'review', ?, ?, ?)"
                        " ON CONFLICT (clip_id) DO NOTHING",
                        (clip_id, json.dumps(reasons), ids, ts(now)),
                    )
                    continue
                finals += 1
                best = consensus(group)
                repo._x(
                    conn,
                    "INSERT INTO adjudications (clip_id, state, reasons, transcript, intent,"
                    " flags, decided_by, from_annotations, decided_at)"
                    " VALUES (?, 'final', '[]', ?, ?, ?, ?, ?, ?) ON CONFLICT (clip_id) DO NOTHING",
                    (
                        clip_id,
                        best.transcript,
                        best.intent,
                        json.dumps(sorted(best.flags)),
                        AUTO,
                        ids,
                        ts(now),
                    ),
                )
        return finals, reviews

    def review_cases(self, limit: int, clip_id: str | None = None) -> list[ReviewCase]:
        repo = self.repo
        where = "j.state = 'review'" + (" AND j.clip_id = ?" if clip_id else "")
        params: tuple[Any, ...] = (clip_id, limit) if clip_id else (limit,)
        with repo._read() as conn:
            cases = repo._x(
                conn,
                "SELECT j.clip_id, j.reasons, c.locale, c.duration_s FROM adjudications j"  # noqa: S608
                f" JOIN clips c ON c.clip_id = j.clip_id WHERE {where}"
                " ORDER BY j.decided_at, j.clip_id LIMIT ?",
                params,
            ).fetchall()
            out = []
            for cid, reasons, locale, duration in cases:
                rows = repo._x(
                    conn,
                    _LABEL_SQL + " WHERE a.clip_id = ? ORDER BY a.created_at",
                    (cid,),
                ).fetchall()
                notes = dict(
                    repo._x(
                        conn,
                        "SELECT annotation_id, note FROM annotations WHERE clip_id = ?",
                        (cid,),
                    ).fetchall()
                )
                out.append(
                    ReviewCase(
                        clip_id=cid,
                        locale=locale,
                        duration_s=float(duration),
                        reasons=list(json.loads(reasons)),
                        labels=[label_from_row(r) for r in rows],
                        notes=notes,
                    )
                )
        return out

    def decide(
        self,
        clip_id: str,
        reviewer: str,
        final: Expected,
        note: str | None,
        now: datetime,
    ) -> list[str]:
        """Record a reviewer's final for a clip waiting for review; the annotation ids it was
        decided from. 404 when the clip is not waiting (never queued, or already decided)."""
        repo = self.repo
        with repo._write(durable=True) as conn:
            row = repo._one(
                conn,
                "SELECT from_annotations FROM adjudications"  # noqa: S608 - our own lock clause
                f" WHERE clip_id = ? AND state = 'review'{repo.FOR_UPDATE}",
                (clip_id,),
            )
            if row is None:
                raise not_found("review")
            repo._x(
                conn,
                "UPDATE adjudications SET state = 'final', transcript = ?, intent = ?, flags = ?,"
                " note = ?, decided_by = ?, decided_at = ? WHERE clip_id = ? AND state = 'review'",
                (
                    final.transcript,
                    final.intent,
                    json.dumps(sorted(final.flags)),
                    note,
                    reviewer,
                    ts(now),
                    clip_id,
                ),
            )
        return list(json.loads(row[0]))

    def review_audio(self, clip_id: str) -> tuple[bytes, str]:
        """The audio of a clip waiting for review (a reviewer plays it)."""
        with self.repo._read() as conn:
            row = self.repo._one(
                conn,
                "SELECT c.sha256, c.media_type FROM clips c JOIN adjudications j"
                " ON j.clip_id = c.clip_id WHERE c.clip_id = ? AND j.state = 'review'",
                (clip_id,),
            )
        if row is None:
            raise not_found("review")
        try:
            return self.repo.audio.read(row[0]), row[1]
        except AudioMissing:
            raise Rejection(410, "audio_deleted", "this clip's audio is gone") from None

    # ------------------------------------------------------------------ finals

    def finals(self) -> Iterator[FinalRow]:
        with self.repo._read() as conn:
            rows = self.repo._x(
                conn,
                "SELECT j.clip_id, c.locale, c.duration_s, c.sha256, c.media_type, j.transcript,"
                " j.intent, j.flags, j.decided_by, j.from_annotations,"
                " EXISTS (SELECT 1 FROM annotations a WHERE a.clip_id = j.clip_id"
                "         AND a.escalated = 1)"
                " FROM adjudications j JOIN clips c ON c.clip_id = j.clip_id"
                " WHERE j.state = 'final' ORDER BY c.seq",
            ).fetchall()
        for r in rows:
            yield FinalRow(
                clip_id=r[0],
                locale=r[1],
                duration_s=float(r[2]),
                sha256=r[3],
                media_type=r[4],
                transcript=r[5],
                intent=r[6],
                flags=list(json.loads(r[7])),
                decided_by=r[8],
                from_annotations=list(json.loads(r[9])),
                escalated=bool(r[10]),
            )

    def read_audio(self, sha256: str) -> bytes | None:
        """The stored bytes, or None when they are gone (retention deleted them)."""
        try:
            return self.repo.audio.read(sha256)
        except AudioMissing:
            return None
