"""Small builders shared by the server tests."""

from __future__ import annotations

import uuid
from typing import Any

from api.models import AnnotationIn, Lease


def annotation(lease: Lease, **overrides: Any) -> AnnotationIn:
    fields: dict[str, Any] = {
        "lease_id": lease.lease_id,
        "fence": lease.fence,
        "transcript": "wake me up at seven",
        "intent": "alarm_set",
    }
    fields.update(overrides)
    return AnnotationIn(**fields)


def body(lease: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A raw JSON submission for a lease as returned by POST /v1/leases."""
    fields: dict[str, Any] = {
        "lease_id": lease["lease_id"],
        "fence": lease["fence"],
        "transcript": "wake me up at seven",
        "intent": "alarm_set",
    }
    fields.update(overrides)
    return fields


def key() -> str:
    return uuid.uuid4().hex


def live_lease_ids(server: Any, person: str = "ann1") -> set[str]:
    """The live leases a `LiveServer`'s database holds for `person`, stranded ones included
    (read from the database, not the API: a lease nobody was told of counts too)."""
    import time

    from tests.fixtures.server import open_repo

    repo = open_repo(server.db, server.data_dir)
    try:
        with repo._read() as conn:
            rows = repo._x(
                conn,
                "SELECT lease_id FROM leases WHERE annotator = ? AND released = 0"
                " AND expires_at > ?",
                (person, time.time()),
            ).fetchall()
    finally:
        repo.close()
    return {str(r[0]) for r in rows}
