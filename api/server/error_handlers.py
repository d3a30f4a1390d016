"""Every refusal leaves the server as `api.models.ErrorBody` `{reason, message, field}`.

FastAPI's own validation answer (a list of pydantic errors) is replaced by the first problem, named
by its field path (`transcript`, `timings.active_seconds`, `Idempotency-Key`), so a client can put
the message next to the right input. Nothing here logs a request body: bodies hold transcripts.

FastAPI parses the body before the route's dependencies run, so a body it cannot parse would be
refused (422) before the token is checked. For a route that needs a token, the handlers below check
it first and answer 401 without it: a caller without a valid token learns nothing of the body rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.models import ErrorBody
from api.server.errors import Rejection

log = logging.getLogger("annotator.server")

# pydantic error type -> our stable reason
_REASONS = {
    "json_invalid": "malformed_json",
    "json_type": "malformed_json",
    "missing": "missing",
    "extra_forbidden": "unknown_field",
    "string_too_long": "too_long",
    "too_long": "too_long",
    "string_pattern_mismatch": "bad_format",
    "unsafe_character": "unsafe_character",
}

_HEADER_NAMES = {"idempotency-key": "Idempotency-Key", "authorization": "Authorization"}


def error_response(
    status_code: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        body.model_dump_json().encode(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def field_path(loc: Sequence[int | str], prefix: str | None = None) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where, parts = parts[0], parts[1:]
        if where == "header" and parts:
            parts = [_HEADER_NAMES.get(parts[0].lower(), parts[0])]
    # A JSON syntax error's loc is the character offset: the problem is the body as a whole.
    if parts and parts[-1].isdigit() and len(parts) == 1:
        parts = []
    path = ".".join(([prefix] if prefix else []) + parts)
    return path or (prefix or "body")


def first_error(errors: Sequence[Any], prefix: str | None = None) -> ErrorBody:
    if not errors:
        return ErrorBody(reason="validation", message="invalid request", field=prefix)
    err = errors[0]
    kind = str(err.get("type", ""))
    reason = _REASONS.get(kind, "validation")
    if reason == "malformed_json":
        return ErrorBody(
            reason=reason,
            message=f"the body is not valid JSON: {err.get('msg', '')}".rstrip(": "),
            field=prefix or "body",
        )
    field = field_path(err.get("loc", ()), prefix)
    msg = str(err.get("msg", "invalid value"))
    return ErrorBody(reason=reason, message=f"{field}: {msg}", field=field)


def validation_error_body(exc: ValidationError, prefix: str | None = None) -> ErrorBody:
    return first_error(exc.errors(include_url=False, include_input=False), prefix)


def _uses_security(dependant: Dependant) -> bool:
    return any(
        isinstance(dep.call, SecurityBase) or _uses_security(dep) for dep in dependant.dependencies
    )


def _needs_token(request: Request) -> bool:
    """Whether the matched route takes a credential (every route but /v1/health and the docs)."""
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and _uses_security(route.dependant)


def _refuse_without_token(request: Request) -> Response | None:
    """The 401 the route's auth dependency would have given, had FastAPI got that far; else None.

    Only the token is checked (as `api.server.app._principal` does), not the role: a caller with a
    valid token may learn why its body is wrong.
    """
    if not _needs_token(request):
        return None
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    try:
        if scheme.lower() != "bearer" or not token:
            raise Rejection(401, "missing_token", "send Authorization: Bearer <your token>")
        request.app.state.service.authenticate(token)
    except Rejection as exc:
        if exc.status_code != 401:
            raise
        return error_response(401, exc.body(), {"WWW-Authenticate": "Bearer"})
    return None


def install_error_handlers(app: FastAPI) -> None:
    async def on_rejection(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Rejection)
        if exc.status_code >= 500:
            log.error("%s on %s %s", exc.reason, request.method, request.url.path)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else exc.headers
        return error_response(exc.status_code, exc.body(), headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        refused = _refuse_without_token(request)
        if refused is not None:
            return refused
        return error_response(422, first_error(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body": a body that is not UTF-8. The contract's answer
            # for a body that cannot be read as JSON is 422 malformed_json (after the token check).
            refused = _refuse_without_token(request)
            if refused is not None:
                return refused
            return error_response(
                422,
                ErrorBody(
                    reason="malformed_json",
                    message="the body is not valid JSON: not UTF-8",
                    field="body",
                ),
            )
        reasons = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        reason = reasons.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        return error_response(
            exc.status_code,
            ErrorBody(
                reason=reason, message=message, field="body" if reason == "body_too_large" else None
            ),
            dict(exc.headers) if exc.headers else None,
        )

    app.add_exception_handler(Rejection, on_rejection)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Added last, so it wraps every other middleware (the body limit too).
    app.add_middleware(CatchAll)


class CatchAll:
    """The one catch-all: any exception no handler above answered becomes a 500 ErrorBody, and
    the log gets the method, the route's template and the exception's type — nothing else.

    An `Exception` handler registered with FastAPI would not do: Starlette's outermost
    ServerErrorMiddleware calls it and then re-raises, and uvicorn logs the traceback with the
    exception's text — which for a storage error can quote the SQL parameters (a transcript,
    a note) or a file path. Here the exception stops.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # noqa: BLE001 - this is the catch-all
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            log.error("internal error on %s %s: %s", scope.get("method"), route, type(exc).__name__)
            if started:  # a streamed body broke off: the client sees the connection close
                return
            response = error_response(
                500,
                ErrorBody(reason="internal", message="internal server error; see the server log"),
            )
            await response(scope, receive, send)
