"""The welfare routes (issue 11): a person's own break state and opt-outs, and the supervisors'
exposure report and opt-out setting. Included by `create_app` with one line."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BeforeValidator

from api.models import MAX_DISPLAY_NAME_CHARS
from api.server.app import Anyone, Supervisor, _errors, json_response
from api.server.errors import not_found
from api.server.welfare import WelfareService
from api.welfare import ExposureReport, OptOuts, WelfareState

PersonPath = Annotated[
    str, Path(min_length=1, max_length=MAX_DISPLAY_NAME_CHARS, pattern=r"^[^\x00-\x1f\x7f/]+$")
]


def _iso_only(value: Any) -> Any:
    # pydantic also reads "0.5" as a unix time; the schema says an RFC 3339 date-time, so only
    # that is taken.
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]", value):
        raise ValueError("expected an RFC 3339 date-time such as 2026-12-01T08:00:00Z")
    return value


Since = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


def welfare_router(welfare: WelfareService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/me/welfare", response_model=WelfareState, responses=_errors(401))
    async def my_welfare(who: Anyone) -> Response:
        return json_response(welfare.state(who.name))

    @router.put("/me/opt-outs", response_model=WelfareState, responses=_errors(401, 422))
    async def my_opt_outs(who: Anyone, body: OptOuts) -> Response:
        welfare.set_opt_outs(who.name, body.categories)
        return json_response(welfare.state(who.name))

    @router.put(
        "/admin/people/{person}/opt-outs",
        response_model=WelfareState,
        responses=_errors(401, 403, 404, 422),
    )
    async def person_opt_outs(who: Supervisor, person: PersonPath, body: OptOuts) -> Response:
        if not welfare.store.person_exists(person):
            raise not_found("person")
        welfare.set_opt_outs(person, body.categories)
        return json_response(welfare.state(person))

    @router.get("/admin/exposure", response_model=ExposureReport, responses=_errors(401, 403, 422))
    async def exposure(
        who: Supervisor,
        since: Since | None = None,
        hours: Annotated[float, Query(gt=0, le=24 * 7)] = 24.0,
    ) -> Response:
        return json_response(welfare.exposure(since, hours))

    return router
