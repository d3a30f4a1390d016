"""Storage for the supervisors' procedure (issue 11), on both SQL backends, over `SqlRepository`'s
helpers (`_read`, `_write`, `_x`, `_one`): written once, like the rest of the queue.

An escalation has no row of its own (see `_ESCALATIONS_COMMON` in `api.server.migrations`): its
source is an escalated annotation or a lease released as `cannot_judge`, and its lifecycle is
the append-only `escalation_events`. A transition reads the escalation's numbered events inside
its write transaction, asks `api.server.escalation_rules`, and inserts the next number; the
UNIQUE (escalation_id, transition_no) makes a concurrent second transition insert nothing, and
that is a 409. Nothing here updates or deletes an event (and the database's triggers refuse it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from api.models import AuditAction, EscalationKind, EscalationState
from api.server import escalation_rules as er
from api.server.audio_store import AudioMissing
from api.server.errors import Rejection, not_found
from api.server.repository import StoredAudio
from api.server.sql_repo import SqlRepository, dt, new_id, ts

_FLAG_SQL = (
    "SELECT a.annotation_id, a.clip_id, a.annotator, a.created_at, a.flags, a.note,"
    " a.transcript, a.intent, c.locale, c.duration_s, c.sha256, c.media_type"
    " FROM annotations a JOIN clips c ON c.clip_id = a.clip_id WHERE a.escalated = 1"
)
_SKIP_SQL = (
    "SELECT l.lease_id, l.clip_id, l.annotator, COALESCE(l.released_at, l.created_at), NULL,"
    " l.release_detail, NULL, NULL, c.locale, c.duration_s, c.sha256, c.media_type"
    " FROM leases l JOIN clips c ON c.clip_id = l.clip_id"
    " WHERE l.release_reason = 'cannot_judge'"
)
_EVENT_COLUMNS = (
    "event_id, escalation_id, transition_no, action, actor, at, from_state, to_state, outcome,"
    " note, event_no"
)
#: Everything that can change the supervisors' list, in four numbers: every table involved is
#: append-only or sticky (escalated annotations stay escalated, a released lease stays released),
#: so a count moves on every commit whatever order concurrent transactions commit in.
_VERSION_SQL = (
    "SELECT (SELECT COUNT(*) FROM annotations WHERE escalated = 1),"
    " (SELECT MAX(amended_at) FROM annotations WHERE escalated = 1),"
    " (SELECT COUNT(*) FROM leases WHERE release_reason = 'cannot_judge'),"
    " (SELECT COUNT(*) FROM escalation_events WHERE transition_no IS NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class SourceRow:
    """What raised an escalation, with its clip's facts."""

    escalation_id: str
    kind: EscalationKind
    clip_id: str
    annotation_id: str | None
    annotator: str
    raised_at: datetime
    flags: tuple[str, ...]
    note: str | None
    transcript: str | None
    intent: str | None
    locale: str
    duration_s: float
    sha256: str
    media_type: str


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    escalation_id: str
    transition_no: int | None
    action: AuditAction
    actor: str
    at: datetime
    from_state: EscalationState
    to_state: EscalationState
    outcome: str | None
    note: str | None
    event_no: int

    def transition(self) -> er.Transition | None:
        if self.transition_no is None:
            return None
        return er.Transition(
            self.transition_no,
            self.action,
            self.actor,
            self.at,
            self.to_state,
            self.outcome,
            self.note,
        )


@dataclass(frozen=True, slots=True)
class AmendmentRow:
    amended_at: datetime
    content: dict[str, Any]


def _source(kind: EscalationKind, row: Sequence[Any]) -> SourceRow:
    source_id, clip_id, annotator, raised, flags, note, transcript, intent = row[:8]
    locale, duration, sha256, media_type = row[8:12]
    return SourceRow(
        escalation_id=er.escalation_id(kind, source_id),
        kind=kind,
        clip_id=clip_id,
        annotation_id=source_id if kind is EscalationKind.FLAG else None,
        annotator=annotator,
        raised_at=dt(float(raised)),
        flags=tuple(json.loads(flags)) if flags else (),
        note=note,
        transcript=transcript,
        intent=intent,
        locale=locale,
        duration_s=float(duration),
        sha256=sha256,
        media_type=media_type,
    )


def _event(row: Sequence[Any]) -> EventRow:
    return EventRow(
        event_id=row[0],
        escalation_id=row[1],
        transition_no=None if row[2] is None else int(row[2]),
        action=AuditAction(row[3]),
        actor=row[4],
        at=dt(float(row[5])),
        from_state=EscalationState(row[6]),
        to_state=EscalationState(row[7]),
        outcome=row[8],
        note=row[9],
        event_no=int(row[10]),
    )


class EscalationStore:
    def __init__(self, repo: SqlRepository, escalation_flags: frozenset[str] = frozenset()) -> None:
        self.repo = repo
        #: The taxonomy's escalating flags: an annotation amended into carrying one was raised
        #: by that amendment (see `_raised_by_amendment`).
        self.escalation_flags = escalation_flags

    # ------------------------------------------------------------------ reading

    def sources(self, since: datetime | None = None) -> list[SourceRow]:
        """Every escalation's source (raised at or after `since` when given)."""
        skip_sql = _SKIP_SQL
        params: tuple[float, ...] = ()
        if since is not None:
            # An annotation escalated by a later amendment was raised then, so annotations
            # are filtered below, on the time they were raised.
            skip_sql += " AND COALESCE(l.released_at, l.created_at) >= ?"
            params = (ts(since),)
        r = self.repo
        with r._read() as conn:
            flags = r._x(conn, _FLAG_SQL).fetchall()
            raised = self._raised_by_amendment(conn)
            skips = r._x(conn, skip_sql, params).fetchall()
        found = [self._flagged(row, raised) for row in flags]
        if since is not None:
            found = [s for s in found if s.raised_at >= since]
        return found + [_source(EscalationKind.CANNOT_JUDGE, row) for row in skips]

    def _flagged(self, row: Sequence[Any], raised: dict[str, float]) -> SourceRow:
        source = _source(EscalationKind.FLAG, row)
        later = raised.get(row[0])
        return source if later is None else replace(source, raised_at=dt(later))

    def _raised_by_amendment(self, conn: Any, annotation_id: str | None = None) -> dict[str, float]:
        """annotation id → when an amendment made it escalated, for escalated annotations that
        were not escalated when submitted (their service-level clock starts at that amendment).

        Escalating flags cannot be amended away (`rules.keep_escalation`), so the first
        amendment whose `before` holds none and whose `after` holds one is the moment."""
        sql = (
            "SELECT m.annotation_id, m.amended_at, m.before_json, m.after_json"
            " FROM amendments m JOIN annotations a ON a.annotation_id = m.annotation_id"
            " WHERE a.escalated = 1"
        )
        params: tuple[str, ...] = ()
        if annotation_id is not None:
            sql += " AND m.annotation_id = ?"
            params = (annotation_id,)
        rows = self.repo._x(conn, sql + " ORDER BY m.seq", params).fetchall()
        first_before: dict[str, bool] = {}
        out: dict[str, float] = {}
        for aid, at, before, after in rows:
            if aid not in first_before:
                first_before[aid] = self._escalating(before)
            if not first_before[aid] and aid not in out and self._escalating(after):
                out[aid] = float(at)
        return out

    def _escalating(self, content_json: str) -> bool:
        flags = json.loads(content_json).get("flags") or []
        return any(f in self.escalation_flags for f in flags)

    def _source_in(self, conn: Any, escalation_id: str) -> SourceRow | None:
        parsed = er.parse_escalation_id(escalation_id)
        if parsed is None:
            return None
        kind, source_id = parsed
        if kind is EscalationKind.FLAG:
            row = self.repo._one(conn, _FLAG_SQL + " AND a.annotation_id = ?", (source_id,))
            if row is not None:
                return self._flagged(row, self._raised_by_amendment(conn, source_id))
        else:
            row = self.repo._one(conn, _SKIP_SQL + " AND l.lease_id = ?", (source_id,))
        return None if row is None else _source(kind, row)

    def source(self, escalation_id: str) -> SourceRow | None:
        with self.repo._read() as conn:
            return self._source_in(conn, escalation_id)

    def transitions(self) -> dict[str, list[er.Transition]]:
        """Every escalation's numbered transitions, by escalation id."""
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                f"SELECT {_EVENT_COLUMNS} FROM escalation_events"  # noqa: S608 - our own columns
                " WHERE transition_no IS NOT NULL",
            ).fetchall()
        out: dict[str, list[er.Transition]] = {}
        for row in rows:
            t = _event(row).transition()
            if t is not None:
                out.setdefault(row[1], []).append(t)
        return out

    def _events_in(self, conn: Any, escalation_id: str) -> list[EventRow]:
        rows = self.repo._x(
            conn,
            f"SELECT {_EVENT_COLUMNS} FROM escalation_events"  # noqa: S608 - our own columns
            " WHERE escalation_id = ? ORDER BY event_no, at, event_id",
            (escalation_id,),
        ).fetchall()
        return [_event(r) for r in rows]

    def events(self, escalation_id: str) -> list[EventRow]:
        """Every audit event of one escalation, oldest first."""
        with self.repo._read() as conn:
            return self._events_in(conn, escalation_id)

    def version(self) -> tuple[Any, ...]:
        """Changes whenever the supervisors' list would (see `_VERSION_SQL`); cheap to poll."""
        with self.repo._read() as conn:
            return tuple(self.repo._one(conn, _VERSION_SQL))

    def amendments(self, annotation_id: str) -> list[AmendmentRow]:
        """An annotation's earlier versions, oldest first (the append-only `amendments`)."""
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT amended_at, before_json FROM amendments"
                " WHERE annotation_id = ? ORDER BY seq",
                (annotation_id,),
            ).fetchall()
        return [AmendmentRow(dt(float(at)), json.loads(before)) for at, before in rows]

    # ------------------------------------------------------------------ writing

    def _insert_event(
        self,
        conn: Any,
        escalation_id: str,
        event_no: int,
        number: int | None,
        action: AuditAction,
        actor: str,
        at: float,
        from_state: EscalationState,
        to_state: EscalationState,
        outcome: str | None,
        note: str | None,
    ) -> bool:
        cursor = self.repo._x(
            conn,
            f"INSERT INTO escalation_events ({_EVENT_COLUMNS})"  # noqa: S608 - our own columns
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (escalation_id, transition_no) DO NOTHING",
            (
                new_id(),
                escalation_id,
                number,
                action.value,
                actor,
                at,
                from_state.value,
                to_state.value,
                outcome,
                note,
                event_no,
            ),
        )
        return int(cursor.rowcount) == 1

    def _standing(self, conn: Any, escalation_id: str) -> tuple[er.Standing, int]:
        """Where it stands, and how many events it has (the next one's `event_no` - 1)."""
        source = self._source_in(conn, escalation_id)
        if source is None:
            raise not_found("escalation")
        events = self._events_in(conn, escalation_id)
        numbered = [t for e in events if (t := e.transition())]
        return er.replay(source.raised_at, numbered), max((e.event_no for e in events), default=0)

    def transition(
        self,
        escalation_id: str,
        action: AuditAction,
        actor: str,
        now: datetime,
        *,
        outcome: str | None = None,
        note: str | None = None,
    ) -> er.Decision:
        """Apply ack/resolve/reopen as one durable transaction, or refuse (404, 409)."""
        with self.repo._write(durable=True) as conn:
            standing, events = self._standing(conn, escalation_id)
            decision = er.next_transition(standing, action, actor, outcome, note)
            if decision.repeat:
                return decision
            inserted = self._insert_event(
                conn,
                escalation_id,
                events + 1,
                standing.last_number + 1,
                action,
                actor,
                ts(now),
                decision.from_state,
                decision.to_state,
                outcome,
                note,
            )
            if not inserted:
                raise Rejection(
                    409, "changed_meanwhile", "someone else changed it just now: look again"
                )
        return decision

    def play(self, escalation_id: str, actor: str, now: datetime) -> StoredAudio:
        """The escalated clip's audio, recorded as a `play` event; 410 once it is resolved."""
        source = self.source(escalation_id)
        if source is None:
            raise not_found("escalation")
        try:
            data = self.repo.audio.read(source.sha256)
        except AudioMissing:
            raise Rejection(410, "audio_deleted", "the clip's audio has been deleted") from None
        with self.repo._write(durable=True) as conn:
            standing, events = self._standing(conn, escalation_id)
            er.require_playable(standing)
            self._insert_event(
                conn,
                escalation_id,
                events + 1,
                None,
                AuditAction.PLAY,
                actor,
                ts(now),
                standing.state,
                standing.state,
                None,
                None,
            )
        return StoredAudio(data=data, media_type=source.media_type)

    # ------------------------------------------------------------------ admin reads

    def clip_counts(self, now: datetime) -> list[tuple[str, int, int, int]]:
        """(locale, pending, leased, done) per locale."""
        r = self.repo
        t = ts(now)
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT locale,"
                " SUM(CASE WHEN completed < needed AND (leased_until IS NULL"
                "      OR leased_until <= ?) THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN completed < needed AND leased_until > ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN completed >= needed THEN 1 ELSE 0 END)"
                " FROM clips GROUP BY locale ORDER BY locale",
                (t, t),
            ).fetchall()
        return [(loc, int(p or 0), int(le or 0), int(d or 0)) for loc, p, le, d in rows]

    def live_leases(self, now: datetime) -> dict[str, int]:
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT annotator, COUNT(*) FROM leases WHERE released = 0 AND expires_at > ?"
                " GROUP BY annotator",
                (ts(now),),
            ).fetchall()
        return {name: int(n) for name, n in rows}

    def annotation_counts(self) -> dict[str, tuple[int, datetime]]:
        """annotator → (annotations, the newest one's time)."""
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT annotator, COUNT(*), MAX(created_at) FROM annotations GROUP BY annotator",
            ).fetchall()
        return {name: (int(n), dt(float(last))) for name, n, last in rows}

    def annotation_times(self, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT annotator, created_at FROM annotations"
                " WHERE created_at >= ? AND created_at < ?",
                (ts(since), ts(until)),
            ).fetchall()
        return [(name, dt(float(at))) for name, at in rows]
