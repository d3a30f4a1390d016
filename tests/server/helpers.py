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
