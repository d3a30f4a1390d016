"""The supervisors' and admins' routes (issue 11), one `APIRouter` that `create_app` includes.

Every route here needs the supervisor or admin role (annotators get 403); `/v1/admin/*` need
admin. Each calls `api.server.supervision.SupervisionService`; none touches storage.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BeforeValidator

from api.models import (
    MAX_ESCALATION_WAIT_S,
    MAX_ESCALATIONS_PAGE,
    AckRequest,
    AuditAction,
    EscalationDetail,
    EscalationPage,
    EscalationState,
    PeopleList,
    QueueStatus,
    ReopenRequest,
    ResolveRequest,
    RevokeRequest,
    RevokeResult,
    Throughput,
)
from api.server.app import Admin, OpaqueIdPath, Supervisor, _errors, json_response
from api.server.supervision import MAX_THROUGHPUT_HOURS, SupervisionService


def _iso_only(value: object) -> object:
    # pydantic also reads a bare number as unix seconds; the schema promises an ISO 8601 time.
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("give an ISO 8601 time, e.g. 2026-12-01T09:00:00Z")
    return value


_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
#: A time in a query: ISO 8601 only (a zone-less one is UTC).
IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]

CursorQuery = Annotated[
    str | None, Query(max_length=128, pattern=r"^[0-9a-f]+$", description="an earlier page's")
]


def _utc(when: datetime | None) -> datetime | None:
    """A time given without a zone is UTC (the server's times all are)."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def supervisor_router(supervision: SupervisionService) -> APIRouter:
    router = APIRouter(prefix="/v1")
    s = supervision

    @router.get("/escalations", response_model=EscalationPage, responses=_errors(401, 403, 422))
    async def escalations(
        who: Supervisor,
        state: Annotated[list[EscalationState] | None, Query()] = None,
        since: IsoTime | None = None,
        cursor: CursorQuery = None,
        wait: Annotated[float, Query(ge=0, le=MAX_ESCALATION_WAIT_S)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_ESCALATIONS_PAGE)] = 200,
    ) -> Response:
        page = await s.wait_page(state, _utc(since), limit, cursor, wait)
        return json_response(page)

    one = _errors(401, 403, 404, 422)
    acting = _errors(401, 403, 404, 409, 422)

    @router.get("/escalations/{escalation_id}", response_model=EscalationDetail, responses=one)
    async def escalation(who: Supervisor, escalation_id: OpaqueIdPath) -> Response:
        return json_response(s.detail(escalation_id))

    @router.post(
        "/escalations/{escalation_id}/ack", response_model=EscalationDetail, responses=acting
    )
    async def ack(
        who: Supervisor, escalation_id: OpaqueIdPath, body: AckRequest | None = None
    ) -> Response:
        note = body.note if body else None
        return json_response(s.act(who.name, escalation_id, AuditAction.ACK, note=note))

    @router.post(
        "/escalations/{escalation_id}/resolve", response_model=EscalationDetail, responses=acting
    )
    async def resolve(
        who: Supervisor, escalation_id: OpaqueIdPath, body: ResolveRequest
    ) -> Response:
        detail = s.act(
            who.name, escalation_id, AuditAction.RESOLVE, outcome=body.outcome, note=body.note
        )
        return json_response(detail)

    @router.post(
        "/escalations/{escalation_id}/reopen", response_model=EscalationDetail, responses=acting
    )
    async def reopen(
        who: Supervisor, escalation_id: OpaqueIdPath, body: ReopenRequest | None = None
    ) -> Response:
        note = body.note if body else None
        return json_response(s.act(who.name, escalation_id, AuditAction.REOPEN, note=note))

    @router.get(
        "/escalations/{escalation_id}/audio",
        response_class=Response,
        responses={
            200: {"content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
            **_errors(401, 403, 404, 410, 422),
        },
    )
    async def audio(who: Supervisor, escalation_id: OpaqueIdPath) -> Response:
        stored = s.audio(who.name, escalation_id)
        return Response(
            stored.data,
            media_type=stored.media_type,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/admin/queue", response_model=QueueStatus, responses=_errors(401, 403))
    async def queue_status(who: Admin) -> Response:
        return json_response(s.queue_status())

    @router.get("/admin/people", response_model=PeopleList, responses=_errors(401, 403))
    async def people(who: Admin) -> Response:
        return json_response(s.people())

    @router.post(
        "/admin/people/{person_id}/revoke",
        response_model=RevokeResult,
        responses=_errors(401, 403, 404, 422),
    )
    async def revoke(
        who: Admin, person_id: OpaqueIdPath, body: RevokeRequest | None = None
    ) -> Response:
        """Revoke one of the person's tokens (`token_id`) or all their live ones: refused by
        every server process within a second, as `annotator token revoke` is."""
        return json_response(s.revoke(person_id, body.token_id if body else None))

    @router.get("/admin/throughput", response_model=Throughput, responses=_errors(401, 403, 422))
    async def throughput(
        who: Admin,
        since: IsoTime | None = None,
        hours: Annotated[int | None, Query(ge=1, le=MAX_THROUGHPUT_HOURS)] = None,
    ) -> Response:
        return json_response(s.throughput(_utc(since), hours))

    return router
