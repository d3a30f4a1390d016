"""Quality routes (issue 12): the review queue (reviewer role: reviewers, supervisors, admins) and
the quality report (supervisors and admins; the supervisor console shows it).

Included by `create_app` with one line; each route calls `QualityService`, never the store.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import TypeAdapter

from api.models import Role
from api.quality_models import MAX_REVIEW_LIST, Final, FinalIn, ReviewItem, ReviewList
from api.server.app import OpaqueIdPath, _errors, _role, json_response
from api.server.quality_rules import Report
from api.server.quality_service import QualityService
from api.server.repository import Principal

Reviewer = Annotated[Principal, Depends(_role(Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN))]
QualitySupervisor = Annotated[Principal, Depends(_role(Role.SUPERVISOR, Role.ADMIN))]

_REPORT = TypeAdapter(Report)


def quality_router(quality: QualityService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/reviews", response_model=ReviewList, responses=_errors(401, 403, 422))
    async def reviews(
        who: Reviewer, limit: Annotated[int, Query(ge=1, le=MAX_REVIEW_LIST)] = 50
    ) -> Response:
        return json_response(quality.reviews(limit))

    @router.get(
        "/reviews/{clip_id}", response_model=ReviewItem, responses=_errors(401, 403, 404, 422)
    )
    async def review(who: Reviewer, clip_id: OpaqueIdPath) -> Response:
        return json_response(quality.review(clip_id))

    @router.get(
        "/reviews/{clip_id}/audio",
        response_class=Response,
        responses={
            200: {"content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
            **_errors(401, 403, 404, 410, 422),
        },
    )
    async def review_audio(who: Reviewer, clip_id: OpaqueIdPath) -> Response:
        data, media_type = quality.audio(clip_id)
        return Response(
            data,
            media_type=media_type,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    @router.post(
        "/reviews/{clip_id}/final",
        response_model=Final,
        status_code=201,
        responses=_errors(401, 403, 404, 422),
    )
    async def decide(who: Reviewer, clip_id: OpaqueIdPath, body: FinalIn) -> Response:
        return json_response(quality.decide(who, clip_id, body), 201)

    @router.get("/quality/report", response_model=Report, responses=_errors(401, 403))
    async def report(who: QualitySupervisor) -> Response:
        return Response(_REPORT.dump_json(quality.report()), media_type="application/json")

    return router
