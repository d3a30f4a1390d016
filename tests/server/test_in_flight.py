"""`api.server.in_flight`: a request counts while the app serves it, on its own loop, and stops
counting however it ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.server.in_flight import InFlight


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_: Any) -> None:
    return None


def test_a_request_counts_while_it_runs_and_not_after_it_fails() -> None:
    in_flight = InFlight()
    seen: list[int] = []
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(in_flight.count())
        if scope["path"] == "/slow":
            await release.wait()
        if scope["path"] == "/boom":
            raise RuntimeError("the handler failed")

    counted = in_flight.counting(app)

    async def run() -> None:
        slow = asyncio.create_task(counted({"type": "http", "path": "/slow"}, _receive, _send))
        await asyncio.sleep(0)
        assert in_flight.count() == 1
        with pytest.raises(RuntimeError):
            await counted({"type": "http", "path": "/boom"}, _receive, _send)
        assert in_flight.count() == 1  # the failed one no longer counts; the slow one does
        await counted({"type": "lifespan", "path": "/"}, _receive, _send)  # not a request
        release.set()
        await slow
        assert in_flight.count() == 0

    asyncio.run(run())
    assert seen == [1, 2, 1]
    assert in_flight._by_loop == {}  # a finished loop is not kept


def test_each_loop_counts_its_own_requests() -> None:
    in_flight = InFlight()
    counts: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        counts.append(in_flight.count())

    async def run() -> None:
        await in_flight.counting(app)({"type": "http", "path": "/"}, _receive, _send)

    asyncio.run(run())
    asyncio.run(run())
    assert counts == [1, 1]
