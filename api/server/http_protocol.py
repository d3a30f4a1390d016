"""uvicorn's httptools protocol, sending each response's head and body in one write.

uvicorn writes the status line and headers (`http.response.start`) and then the body as two
`transport.write` calls, i.e. two `send` syscalls and two TCP segments per response (the socket
has TCP_NODELAY). On loopback each send also runs the receiver's side of TCP, so under load these
syscalls were the largest single item in the server's profile. Here the header block is held back
and sent together with the body write that follows it (in the same event-loop step for every
response this app sends). Bytes and their order are unchanged: anything else that touches the
transport first sends what is held, and a held head with no body after it (HEAD, an app error)
still goes out at the end of the loop turn.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport:
    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            data = self._held + bytes(data)
            self._held = None
        if data[:7] == b"HTTP/1." and data[-4:] == b"\r\n\r\n":
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        self._flush()
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = _CoalescingTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, wrapped))
