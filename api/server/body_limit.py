"""A pure-ASGI guard that refuses oversize request bodies with 413 before they are parsed.

A declared Content-Length over the limit is answered at once, without reading the body; a streamed
(chunked) body is counted as it arrives and stops with an HTTPException(413) raised from `receive`,
which FastAPI lets through to the app's handler, so both answers are `ErrorBody` JSON.
(FastAPI's own `max_body_size` answers in plain text, which the contract does not allow.)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.models import ErrorBody


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, default: int, per_path: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.per_path = per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await self._refuse(send, limit)
                    return
                break

        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the request body is larger than {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = (
            ErrorBody(
                reason="body_too_large",
                message=f"the request body is larger than {limit} bytes",
                field="body",
            )
            .model_dump_json()
            .encode()
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The unread body is still on the wire: do not reuse this connection.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
