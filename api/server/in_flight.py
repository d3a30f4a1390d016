"""How many HTTP requests an event loop is in the middle of serving.

Group commit asks it (`api.server.group_commit`): handing a flush to a thread frees the loop for
the requests it is serving meanwhile, and costs two thread wake-ups (measured: 0.3 ms of an
idle annotator's 3 ms cycle on 2 cores). When the requests a group answers are all the loop is
serving, nothing would use the freed loop, so the flush runs inline. A request counts from the
moment the app is called with it until its answer has been handed to the server (or its
handler raised), the time in which it could be waiting on the loop.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send


class InFlight:
    def __init__(self) -> None:
        # Per event loop: tests may drive one app from several loops (threads). A loop with
        # nothing in flight has no entry, so finished loops are not kept.
        self._by_loop: dict[asyncio.AbstractEventLoop, int] = {}

    def count(self) -> int:
        """Requests in flight on the running loop."""
        return self._by_loop.get(asyncio.get_running_loop(), 0)

    def counting(self, app: ASGIApp) -> _Counted:
        """`app`, with each HTTP request it serves counted while it runs."""
        return _Counted(app, self._by_loop)


class _Counted:
    __slots__ = ("app", "by_loop")

    def __init__(self, app: ASGIApp, by_loop: dict[asyncio.AbstractEventLoop, int]) -> None:
        self.app = app
        self.by_loop = by_loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        by_loop, loop = self.by_loop, asyncio.get_running_loop()
        by_loop[loop] = by_loop.get(loop, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = by_loop[loop] - 1
            if left:
                by_loop[loop] = left
            else:
                del by_loop[loop]
