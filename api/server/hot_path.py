"""The three requests of an annotator's cycle served without FastAPI's routing and dependency
solving, when FastAPI would take them as they are; every other request, and every one of these
that is not plainly well-formed, goes to FastAPI unchanged.

Why: an annotator's cycle (lease → audio → submit) is what the server does all day, and FastAPI's
per-request work (matching ~40 routes, solving the token dependency, reading and validating the
body through its generic machinery) cost about half of the server's CPU in that cycle
(`python -m bench.cycle_cost`). What this does instead is what those routes do, through the same
functions: the token through `QueueService.authenticate` (as `app.BearerToken`), the body through
the same pydantic model `json.loads` + `model_validate` (as FastAPI), the answer from `answer_*`
below (which the FastAPI routes call too).

Exactness: nothing with a side effect runs until the request is known to be one FastAPI would
accept — `Authorization: Bearer <token>`, `Content-Type: application/json`, a JSON body its model
validates, one valid `Idempotency-Key` (at most one on a lease request) — so any other request
falls through with its body replayed, and gets FastAPI's own answer (its 401/422 wording,
`error_handlers`' ordering of the token check before body errors). From there on the answers are
the routes' own, and refusals (`Rejection`: 401, 404, 409, 429...) are raised into the same
exception handlers, because this sits inside the app's middleware (body-size limit, catch-all) and
exception handling, in front of its router only. `tests/server/test_hot_path.py` sends the same
requests both ways.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.models import AnnotationIn, IdempotencyKey, LeaseList, LeaseRequest

if TYPE_CHECKING:
    from api.server.repository import Principal
    from api.server.service import QueueService

_LEASE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # `app.OpaqueIdPath`
_AUDIO_PREFIX, _AUDIO_SUFFIX = "/v1/leases/", "/audio"
_KEY = TypeAdapter(IdempotencyKey)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json().encode(), status_code, media_type="application/json")


# The routes' answers, shared by the FastAPI routes (`api.server.app`) and the hot path.


async def answer_lease(
    service: QueueService, who: Principal, body: LeaseRequest, key: str | None
) -> Response:
    # 429 on_break + Retry-After during a welfare break, 409 lease_cap at the cap; a retry
    # under the same Idempotency-Key is answered with the leases its first attempt got.
    leases = await service.claim_grouped(who, body.count, body.ttl_seconds, key)
    return json_response(LeaseList(leases=leases))


def answer_audio(service: QueueService, who: Principal, lease_id: str) -> Response:
    # Clips are seconds long and sit in the page cache or one row: inline beats a thread hop.
    stored = service.audio(who, lease_id)
    return Response(
        stored.data,
        media_type=stored.media_type,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def answer_submit(
    service: QueueService, who: Principal, key: str, body: AnnotationIn
) -> Response:
    status, receipt = await service.submit_grouped(who, key, body)
    return json_response(receipt, status)


class _Fallthrough(Exception):
    """Not a request the hot path takes: FastAPI answers it."""


class HotPath:
    """ASGI, in front of the app's router (see the module docstring)."""

    def __init__(self, app: ASGIApp, service: QueueService, routes: dict[str, Any]) -> None:
        self.app = app
        self.service = service
        #: The FastAPI route each request stands for, by (method path-template): put in the scope
        #: as routing would, so the catch-all's log names it.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path in ("/v1/leases", "/v1/annotations"):
            await self._post(scope, receive, send, path)
        elif (
            method == "GET"
            and path.startswith(_AUDIO_PREFIX)
            and path.endswith(_AUDIO_SUFFIX)
            and _LEASE_ID.fullmatch(path, len(_AUDIO_PREFIX), len(path) - len(_AUDIO_SUFFIX))
        ):
            headers = _headers(scope)
            token = _bearer(headers)
            if token is None:
                await self.app(scope, receive, send)
                return
            scope["route"] = self.routes["GET /v1/leases/{lease_id}/audio"]
            who = self.service.authenticate(token, _client(scope))
            lease_id = path[len(_AUDIO_PREFIX) : len(path) - len(_AUDIO_SUFFIX)]
            await answer_audio(self.service, who, lease_id)(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        headers = _headers(scope)
        token = _bearer(headers)
        if token is None or headers.get(b"content-type") != [b"application/json"]:
            await self.app(scope, receive, send)
            return
        taken = _Read()
        try:
            body = await _read_body(receive, taken)
            parsed = json.loads(body)
            keys = headers.get(b"idempotency-key")
            if path == "/v1/leases":
                # The key is optional here (older clients send none); more than one is FastAPI's.
                if keys is not None and len(keys) != 1:
                    raise _Fallthrough
                lease_key = (
                    None if keys is None else _KEY.validate_python(keys[0].decode("latin-1"))
                )
                lease_body = LeaseRequest.model_validate(parsed)
            else:
                if keys is None or len(keys) != 1:
                    raise _Fallthrough
                key = _KEY.validate_python(keys[0].decode("latin-1"))
                annotation = AnnotationIn.model_validate(parsed)
        except Exception:  # noqa: BLE001 - anything not plainly well-formed is FastAPI's to answer
            await self.app(scope, _replay(taken, receive), send)
            return
        service = self.service
        if path == "/v1/leases":
            scope["route"] = self.routes["POST /v1/leases"]
            who = service.authenticate(token, _client(scope))
            response = await answer_lease(service, who, lease_body, lease_key)
        else:
            scope["route"] = self.routes["POST /v1/annotations"]
            who = service.authenticate(token, _client(scope))
            response = await answer_submit(service, who, key, annotation)
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def _bearer(headers: dict[bytes, list[bytes]]) -> str | None:
    """The token of the first Authorization header (what `BearerToken` reads), when it is a
    non-empty Bearer one; None for anything else (FastAPI gives that its 401)."""
    values = headers.get(b"authorization")
    if not values:
        return None
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _client(scope: Scope) -> str | None:
    client = scope.get("client")  # `error_handlers.client_address`
    return str(client[0]) if client else None


class _Read:
    """What was taken from `receive` while reading a body, to give back on falling through."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.error: Exception | None = None  # raised by `receive` (the body-size limit's 413)


async def _read_body(receive: Receive, taken: _Read) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            message = await receive()
        except Exception as e:
            taken.error = e
            raise _Fallthrough from e
        taken.messages.append(message)
        if message["type"] != "http.request":
            raise _Fallthrough
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(taken: _Read, receive: Receive) -> Receive:
    """`receive` as if nothing had been read: the messages taken so far, then what `receive`
    raised, or the rest."""
    pending = list(taken.messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        if taken.error is not None:
            error, taken.error = taken.error, None
            raise error
        return await receive()

    return replayed
