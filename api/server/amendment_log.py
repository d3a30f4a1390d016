"""The append-only amendment history (issue 10 finding 8): every amend keeps what it replaced.

`annotations` holds each annotation's current content; each amend also appends one row to
`amendments` (migration: `api.server.migrations`, both backends) with who amended, when, and the
content before and after, in the same durable transaction as the update. Nothing in the server
updates or deletes these rows, so an annotator cannot erase what they said earlier (a
supervisor, the adjudication and the audit read it here).

`append` is called by `SqlRepository.amend` inside its transaction; `AmendmentStore.history` is
the read side (for supervisor/audit routes; notes/priv10.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api.server.repository import AnnotationContent

if TYPE_CHECKING:
    from api.server.sql_repo import SqlRepository


@dataclass(frozen=True, slots=True)
class Amendment:
    annotation_id: str
    annotator: str
    amended_at: datetime
    before: AnnotationContent
    after: AnnotationContent


def content_json(c: AnnotationContent) -> str:
    return json.dumps(
        {"transcript": c.transcript, "intent": c.intent, "flags": list(c.flags), "note": c.note},
        ensure_ascii=False,
        sort_keys=True,
    )


def content_from_json(raw: str, escalated: bool) -> AnnotationContent:
    d = json.loads(raw)
    return AnnotationContent(
        transcript=str(d["transcript"]),
        intent=str(d["intent"]),
        flags=tuple(str(f) for f in d["flags"]),
        note=None if d["note"] is None else str(d["note"]),
        escalated=escalated,
    )


def append(
    repo: SqlRepository,
    conn: Any,
    annotation_id: str,
    annotator: str,
    t_now: float,
    before: AnnotationContent,
    after: AnnotationContent,
) -> None:
    """One history row, inside the caller's (the amend's) write transaction."""
    repo._x(
        conn,
        "INSERT INTO amendments (annotation_id, annotator, amended_at, before_json, after_json)"
        " VALUES (?, ?, ?, ?, ?)",
        (annotation_id, annotator, t_now, content_json(before), content_json(after)),
    )


class AmendmentStore:
    """Reads the history over a `SqlRepository`'s connections."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    def history(self, annotation_id: str) -> list[Amendment]:
        """Every amendment of the annotation, oldest first."""
        from api.server.sql_repo import dt

        with self.repo._read() as conn:
            rows = self.repo._x(
                conn,
                "SELECT annotation_id, annotator, amended_at, before_json, after_json"
                " FROM amendments WHERE annotation_id = ? ORDER BY seq",
                (annotation_id,),
            ).fetchall()
        return [
            Amendment(
                annotation_id=r[0],
                annotator=r[1],
                amended_at=dt(float(r[2])),
                before=content_from_json(r[3], escalated=False),
                after=content_from_json(r[4], escalated=False),
            )
            for r in rows
        ]
