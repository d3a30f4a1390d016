"""The reference queue server: the routes of the v1 contract over a `Repository`.

Speed matters here (hundreds of annotators share one small machine), so the hot routes are
`async def` and call the service, and through it the repository, inline (sub-millisecond, one
connection at a time per process; no threadpool hop: why in `api.server.repository`), and they
answer with pre-serialised JSON `Response`s: FastAPI still documents every `response_model` in
/openapi.json but does not validate and re-encode what we built from the same models. Request
bodies are parsed by FastAPI into the `api.models` types, so the schema and the validation cannot
drift apart. `POST /v1/annotations` awaits a group commit (see
`api.server.group_commit`): submissions that arrive together share one durable transaction, and
each response is sent only after its commit is on disk. `annotator serve` also runs uvicorn with
`api.server.http_protocol` (head and body of a response in one write) and calls
`tune_gc_for_serving`.

Privacy: nothing here logs a request body or a token (uvicorn's access log is off; errors log the
route and exception type only).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param

from api.models import (
    Annotation,
    AnnotationIn,
    AnnotationPatch,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    Health,
    IdempotencyKey,
    LeaseList,
    LeaseRequest,
    LeaseState,
    Receipt,
    ReleaseRequest,
    RenewRequest,
    Role,
    Stats,
    Taxonomy,
)
from api.server.body_limit import BodySizeLimit
from api.server.clock import Clock, SystemClock
from api.server.error_handlers import client_address, install_error_handlers
from api.server.errors import Rejection
from api.server.hot_path import HotPath, answer_audio, answer_lease, answer_submit
from api.server.hot_path import json_response as json_response  # the other routers use it
from api.server.repository import Principal, Repository
from api.server.service import QueueService, batch_items
from api.server.settings import ServerSettings

SETTINGS_ENV = "ANNOTATOR_SERVER_SETTINGS"
#: Allocations between young-generation collections in a serving process (CPython's default: 700).
GC_GEN0_THRESHOLD = 20_000

OpaqueIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

_BEARER_DESCRIPTION = "a person's token (`annotator token create`)"


class BearerToken(SecurityBase):
    """The caller's `Principal` from `Authorization: Bearer <token>`, as ONE dependency.

    FastAPI documents it as the `HTTPBearer` scheme (a `SecurityBase`: /openapi.json, the docs and
    `error_handlers._needs_token` see it as before), but it is not the usual `HTTPBearer` +
    `Depends(principal)` pair: each level of dependencies costs FastAPI ~90 function calls per
    request, and every request of an annotator's cycle passes here."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description=_BEARER_DESCRIPTION)
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> Principal:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            raise Rejection(401, "missing_token", "send Authorization: Bearer <your token>")
        service: QueueService = request.app.state.service
        return service.authenticate(token, client_address(request))


_principal = BearerToken()


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("annotator")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


def _role(*allowed: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def check(who: Annotated[Principal, Security(_principal)]) -> Principal:
        if who.role not in allowed:
            names = " or ".join(r.value for r in allowed)
            raise Rejection(403, "forbidden_role", f"this needs the {names} role")
        return who

    return check


# Module level, not inside _build_router: FastAPI resolves these string annotations in the
# module's globals (this file uses postponed evaluation).
Anyone = Annotated[Principal, Security(_principal)]
Supervisor = Annotated[Principal, Depends(_role(Role.SUPERVISOR, Role.ADMIN))]
Admin = Annotated[Principal, Depends(_role(Role.ADMIN))]


def _build_router(service: QueueService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/health", response_model=Health)
    async def health() -> Response:
        return json_response(Health(version=_version(), time=service.clock.now()))

    @router.get("/taxonomy", response_model=Taxonomy, responses=_errors(401))
    async def taxonomy(who: Anyone) -> Response:
        return Response(service.taxonomy_json, media_type="application/json")

    @router.post("/leases", response_model=LeaseList, responses=_errors(401, 403, 409, 422, 429))
    async def lease(
        who: Anyone,
        body: LeaseRequest,
        idempotency_key: Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        return await answer_lease(service, who, body, idempotency_key)  # also by `HotPath`

    @router.post(
        "/leases/{lease_id}/renew",
        response_model=LeaseState,
        responses=_errors(401, 403, 404, 410, 422),
    )
    async def renew(
        who: Anyone, lease_id: OpaqueIdPath, body: RenewRequest | None = None
    ) -> Response:
        return json_response(service.renew(who, lease_id, body.ttl_seconds if body else None))

    @router.post(
        "/leases/{lease_id}/release", status_code=204, responses=_errors(401, 403, 404, 422)
    )
    async def release(who: Anyone, lease_id: OpaqueIdPath, body: ReleaseRequest) -> Response:
        service.release(who, lease_id, body.reason, body.detail)
        return Response(status_code=204)

    @router.get(
        "/leases/{lease_id}/audio",
        response_class=Response,
        responses={
            200: {"content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
            **_errors(401, 403, 404, 410, 422),
        },
    )
    async def audio(who: Anyone, lease_id: OpaqueIdPath) -> Response:
        return answer_audio(service, who, lease_id)  # also served by `HotPath`

    @router.post(
        "/annotations",
        response_model=Receipt,
        status_code=201,
        responses={
            200: {"model": Receipt, "description": "a replay of an earlier submission"},
            **_errors(401, 403, 404, 409, 422),
        },
    )
    async def submit(
        who: Anyone,
        body: AnnotationIn,
        idempotency_key: Annotated[IdempotencyKey, Header(alias="Idempotency-Key")],
    ) -> Response:
        return await answer_submit(service, who, idempotency_key, body)  # also by `HotPath`

    @router.post(
        "/annotations/batch",
        response_model=BatchResponse,
        responses=_errors(401, 413, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}
                },
            }
        },
    )
    async def submit_batch(who: Anyone, request: Request) -> Response:
        items = batch_items(await request.body())
        results = service.submit_batch(who, items)
        return json_response(BatchResponse(results=results))

    @router.patch(
        "/annotations/{annotation_id}",
        response_model=Annotation,
        responses=_errors(401, 403, 404, 409, 422),
    )
    async def amend(who: Anyone, annotation_id: OpaqueIdPath, body: AnnotationPatch) -> Response:
        return json_response(service.amend(who, annotation_id, body))

    @router.get("/me/stats", response_model=Stats, responses=_errors(401))
    async def my_stats(who: Anyone) -> Response:
        return json_response(service.stats(who))

    @router.get(
        "/export",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "one ExportRecord per line",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            },
            **_errors(401, 403),
        },
    )
    async def export(who: Admin) -> StreamingResponse:
        # A sync generator: Starlette iterates it in a worker thread on its own connection.
        return StreamingResponse(service.export_lines(), media_type="application/x-ndjson")

    return router


def _install_openapi(app: FastAPI) -> None:
    """Add the models that routes parse by hand (the batch body) to the schema components."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        extra = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in extra.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault("BatchRequest", extra)
        # Any route that takes a token may answer 429 (api.server.auth_throttle).
        throttled = {
            "description": "too many failed authentications from this address (Retry-After)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("security"):
                    operation.setdefault("responses", {}).setdefault("429", throttled)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: ServerSettings,
    clock: Clock | None = None,
    repo: Repository | None = None,
    *,
    owns_repo: bool | None = None,
) -> FastAPI:
    """The app over `repo` (default: the one `settings.database_url` names). The app closes the
    repository at shutdown when it opened it, or when `owns_repo` says so."""
    if owns_repo is None:
        owns_repo = repo is None
    if repo is None:
        from api.server.backends import open_repository

        repo = open_repository(
            settings.database_url,
            settings.data_dir,
            annotations_per_clip=settings.annotations_per_clip,
        )
    service = QueueService(settings, clock or SystemClock(), repo)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if service.retention is not None:
                await stack.enter_async_context(
                    service.retention.sweeping(settings.retention_sweep_s)
                )
            yield
        if owns_repo:
            service.repo.close()

    app = FastAPI(
        title="annotator queue",
        version=_version(),
        summary="Leases voice-assistant clips to annotators and collects their annotations.",
        lifespan=lifespan,
        # No OpenTelemetry: FastAPI would otherwise ask the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_body_bytes,
        per_path={"/v1/annotations/batch": settings.max_batch_body_bytes},
    )
    app.state.service = service
    install_error_handlers(app)
    # The routes go into the app's own router rather than through `include_router`: an included
    # router is matched through a lazy per-request wrapper (FastAPI 0.16x) that costs ~250
    # function calls per request, a third of the server's CPU in an annotator's cycle
    # (`python -m bench.cycle_cost`). Other modules' routers may be included as usual.
    app.router.routes.extend(_build_router(service).routes)
    # The annotator's cycle without FastAPI's per-request machinery, inside its middleware and
    # exception handlers (`api.server.hot_path`: it falls through to the router for anything
    # it does not take); every request it sees is counted in flight (for group commit).
    hot = {
        f"{method} {route.path}": route
        for route in app.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    app.router.middleware_stack = service.in_flight.counting(
        HotPath(app.router.middleware_stack, service, hot)
    )
    # Imported here: that module takes its role dependencies from this one.
    from api.server.supervision import SupervisionService
    from api.server.supervisor_routes import supervisor_router

    app.include_router(supervisor_router(SupervisionService(service)))
    if service.quality is not None:
        from api.server.quality_routes import quality_router

        app.include_router(quality_router(service.quality))
    if service.welfare is not None:
        from api.server.welfare_routes import welfare_router

        app.include_router(welfare_router(service.welfare))
    _install_openapi(app)
    return app


def tune_gc_for_serving() -> None:
    """Call once the app is built, in each server process: what exists now (modules, the app,
    its routes and models) lives for the whole process, so move it out of the collector's sight
    and collect the young generation less often. A full collection over all of it otherwise
    runs every few thousand requests and stalls every request in flight for tens of ms."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


def app_from_env() -> FastAPI:
    """uvicorn's factory for `--workers N`: each worker process builds its own app and connection
    from the settings `serve` put in the environment."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set; start the server with `annotator serve`")
    app = create_app(ServerSettings.model_validate_json(raw))
    tune_gc_for_serving()
    return app
