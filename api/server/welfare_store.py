"""Storage for welfare (issue 11), over `SqlRepository`'s transaction and SQL helpers, so the
same SQL runs on SQLite and PostgreSQL (tables: migration `_WELFARE` in `migrations.py`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from api.server import rules
from api.server.sql_repo import PERSON_PROBE, ClaimGate, SqlRepository

#: A clip flagged this long before a person heard it still counts as flagged for them (a clip is
#: re-served to a second annotator within hours, not weeks).
HEARD_BEFORE_S = 7 * 24 * 3600.0
_SKIPPED = ", ".join(f"'{r}'" for r in rules.SKIP_REASONS)
#: Who heard which clip when: annotated it, or skipped it (parameters: since, until twice).
_HEARD = (
    "SELECT annotator AS person, clip_id, created_at AS at FROM annotations"  # noqa: S608
    " WHERE created_at >= ? AND created_at <= ?"
    " UNION"
    " SELECT annotator AS person, clip_id, created_at AS at FROM leases"
    " WHERE created_at >= ? AND created_at <= ?"
    f" AND release_reason IN ({_SKIPPED})"
)


@dataclass(frozen=True, slots=True)
class Break:
    person: str
    started_at: float
    ends_at: float
    reason: str


def flag_pattern(category: str) -> str:
    """The LIKE pattern that finds `category` in `annotations.flags` (a JSON list of ids).

    Stored with the opt-out, so no SQL text holds a '%' (psycopg reads it as a placeholder)."""
    return f'%"{category}"%'


class WelfareStore:
    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    # -- opt-outs

    def opt_outs(self, person: str) -> list[str]:
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT category FROM welfare_opt_outs WHERE person = ? ORDER BY category",
                (person,),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def all_opt_outs(self) -> dict[str, list[str]]:
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn, "SELECT person, category FROM welfare_opt_outs ORDER BY person, category"
            ).fetchall()
        out: dict[str, list[str]] = {}
        for person, category in rows:
            out.setdefault(str(person), []).append(str(category))
        return out

    def set_opt_outs(self, person: str, categories: Sequence[str], now: float) -> None:
        r = self.repo
        with r._write(durable=True) as conn:
            r._x(conn, "DELETE FROM welfare_opt_outs WHERE person = ?", (person,))
            for category in sorted(set(categories)):
                r._x(
                    conn,
                    "INSERT INTO welfare_opt_outs (person, category, flag_pattern, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (person, category, flag_pattern(category), now),
                )

    # -- breaks

    def last_break(self, person: str) -> Break | None:
        r = self.repo
        with r._read() as conn:
            row = r._one(
                conn,
                "SELECT started_at, ends_at, reason FROM welfare_breaks WHERE person = ?"
                " ORDER BY ends_at DESC LIMIT 1",
                (person,),
            )
        return None if row is None else Break(person, float(row[0]), float(row[1]), str(row[2]))

    def add_break(self, b: Break) -> None:
        r = self.repo
        with r._write(durable=True) as conn:
            r._x(
                conn,
                "INSERT INTO welfare_breaks (person, started_at, ends_at, reason)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (person, started_at) DO NOTHING",
                (b.person, b.started_at, b.ends_at, b.reason),
            )

    def breaks_between(self, since: float, until: float) -> list[Break]:
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT person, started_at, ends_at, reason FROM welfare_breaks"
                " WHERE ends_at >= ? AND started_at < ? ORDER BY started_at",
                (since, until),
            ).fetchall()
        return [Break(str(p), float(s), float(e), str(why)) for p, s, e, why in rows]

    @staticmethod
    def claim_gate(
        person: str, now: float, after_flagged: int, rest: float, limit: float, lookback: float
    ) -> ClaimGate:
        """`WelfareService._evaluate`'s "no break on, none due" in SQL, for the claim's own
        statement (`SqlRepository.claim`): 1 when no break of `person`'s ends after `now`, and
        since the last one (or `lookback` before `now`) fewer than `after_flagged` of their
        submissions were on escalated clips, and no run of work (submissions less than `rest`
        apart; the latest run lasting until `now` while its last one is under `rest` ago) lasted
        `limit` seconds. A rule at 0 is off. The same rows `work_times` reads, counted in the
        database instead of sent to this process."""
        # `s.since` (the last break's end, or the lookback) and `s.latest` (the person's latest
        # submission) are read once, in the derived row below, not once per rule: each lookup
        # is a subplan of its own in PostgreSQL's plan of the claim.
        sql = "CASE WHEN EXISTS (SELECT 1 FROM welfare_breaks WHERE person = ? AND ends_at > ?)"
        params: list[object] = [person, now]
        if after_flagged > 0:
            # From the escalated clips (few: `annotations_escalated`) to this person's annotation
            # of each (one probe of the unique (clip_id, annotator) key), not from the person's
            # work since the break, a scan that grows all shift long. A clip escalated twice
            # counts once: only its first escalated annotation in the window leads.
            sql += (
                " OR (SELECT COUNT(*) FROM annotations e"  # noqa: S608 - our own constants
                "      WHERE e.escalated = 1 AND e.created_at >= s.since - ?"
                "        AND EXISTS (SELECT 1 FROM annotations a WHERE a.clip_id = e.clip_id"
                f"                    AND a.{PERSON_PROBE} AND a.created_at >= s.since)"
                "        AND NOT EXISTS (SELECT 1 FROM annotations d"
                "                         WHERE d.clip_id = e.clip_id AND d.escalated = 1"
                "                          AND d.created_at >= s.since - ?"
                "                          AND d.annotation_id < e.annotation_id)) >= ?"
            )
            params += [HEARD_BEFORE_S, person, HEARD_BEFORE_S, after_flagged]
        if limit > 0:
            # Runs: a new one starts at each submission `rest` or more after the one before
            # (RANGE frame: equal times share a run); the one holding the person's latest time
            # is the current run. Computed only when the work since `since` spans the limit at
            # all (one more index step), as no run is longer than from the first time to now
            # (or the latest time).
            sql += (
                " OR (CASE WHEN (CASE WHEN s.latest > ? THEN s.latest ELSE ? END)"
                "             - (SELECT created_at FROM annotations WHERE annotator = ?"
                "                 AND created_at >= s.since ORDER BY created_at LIMIT 1) < ?"
                "  THEN false ELSE"
                " EXISTS (SELECT 1 FROM (SELECT MIN(t) AS b, MAX(t) AS e FROM"
                "   (SELECT t, SUM(brk) OVER (ORDER BY t) AS run FROM"
                "     (SELECT created_at AS t, CASE WHEN created_at - LAG(created_at)"
                "              OVER (ORDER BY created_at) < ? THEN 0 ELSE 1 END AS brk"
                "        FROM annotations WHERE annotator = ? AND created_at >= s.since) AS w"
                "   ) AS r GROUP BY run) AS g"
                "  WHERE (CASE WHEN g.e = s.latest"
                "              AND ? - g.e < ? THEN ? ELSE g.e END) - g.b >= ?) END)"
            )
            params += [now, now, person, limit, rest, person, now, rest, now, limit]
        sql = (
            f"(SELECT {sql} THEN 0 ELSE 1 END FROM"  # noqa: S608 - our own SQL
            " (SELECT COALESCE((SELECT MAX(b.ends_at) FROM welfare_breaks b WHERE b.person = ?),"
            "                  ?) AS since,"
            "         (SELECT created_at FROM annotations WHERE annotator = ?"
            "           ORDER BY created_at DESC LIMIT 1) AS latest) AS s)"
        )
        params += [person, now - lookback, person]
        return ClaimGate(sql, tuple(params))

    # -- what a person did

    def work_times(self, person: str, since: float) -> tuple[list[float], list[float]]:
        """This person's submission times from `since`, and the subset on clips that anyone
        flagged for escalation (the break rule's two counters). Two index scans: the times from
        `annotations_by_time`, the flagged ones through `annotations_escalated` (few rows)."""
        r = self.repo
        with r._read() as conn:
            times = r._x(
                conn,
                "SELECT created_at FROM annotations WHERE annotator = ? AND created_at >= ?"
                " ORDER BY created_at",
                (person, since),
            ).fetchall()
            flagged = r._x(
                conn,
                "SELECT a.created_at FROM annotations a"
                " WHERE a.annotator = ? AND a.created_at >= ? AND a.clip_id IN"
                "  (SELECT e.clip_id FROM annotations e"
                "    WHERE e.escalated = 1 AND e.created_at >= ?)"
                " ORDER BY a.created_at",
                (person, since, since - HEARD_BEFORE_S),
            ).fetchall()
        return [float(row[0]) for row in times], [float(row[0]) for row in flagged]

    def heard_flags(self, since: float, until: float) -> list[tuple[str, str, list[str], float]]:
        """(person, clip, flags someone gave it, when the person annotated or skipped it) for
        every clip a person annotated or skipped in [since, until] that carries a flag."""
        r = self.repo
        sql = (
            "SELECT h.person, h.clip_id, f.flags, h.at FROM ("  # noqa: S608 - our own enum list
            f"{_HEARD}) h JOIN annotations f ON f.clip_id = h.clip_id WHERE f.flags <> '[]'"
        )
        with r._read() as conn:
            rows = r._x(conn, sql, (since, until, since, until)).fetchall()
        return [(str(p), str(c), list(json.loads(flags)), float(at)) for p, c, flags, at in rows]

    def activity(self, since: float, until: float) -> dict[str, list[float]]:
        """person → the times they annotated or skipped a clip in [since, until], oldest first
        (what a shift is made of)."""
        r = self.repo
        sql = f"SELECT h.person, h.at FROM ({_HEARD}) h ORDER BY h.at"  # noqa: S608 - ours
        with r._read() as conn:
            rows = r._x(conn, sql, (since, until, since, until)).fetchall()
        out: dict[str, list[float]] = {}
        for person, at in rows:
            out.setdefault(str(person), []).append(float(at))
        return out

    def person_exists(self, person: str) -> bool:
        r = self.repo
        with r._read() as conn:
            return (
                r._one(conn, "SELECT 1 FROM tokens WHERE name = ? LIMIT 1", (person,)) is not None
            )
