"""Claims that arrive together share one transaction (SQLite and PostgreSQL).

On SQLite every claim is a write transaction of its own: BEGIN IMMEDIATE with its busy-timeout
PRAGMAs, the claim's read and stamps, and a COMMIT that writes the touched pages to the WAL. On
PostgreSQL it is one round trip, but its COMMIT waits for a WAL flush while the event loop waits
for it. Either way the claims of one process queue behind each other, so a claim route does not
run its claim at once: it queues it and awaits a future, the first claim of an event-loop turn
schedules a flush for the next turn, and the flush runs every queued claim in order inside the
repository's `shared_writes` — one BEGIN, a SAVEPOINT per write, one COMMIT (one WAL flush) —
before any answer leaves. Under light load a group is one claim and runs as before; under load
the turn's claims pay one transaction between them.

Each claim runs whole (the welfare gate, gold, the cap: `QueueService.claim`), so its answer is
what it would have been alone, in the same order. A refusal (`Rejection`) fails its own request
and leaves what it would have left alone: the write it refused in is rolled back to its
savepoint. Any other error (PostgreSQL: also a person's claim lock held by another process,
which a group does not wait for) rolls the whole group back and each claim runs again alone, so
one bad claim cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

from api.server.errors import Rejection
from api.server.group_commit import outcome, settle

T = TypeVar("T")
_Pending = list[tuple[Callable[[], T], "asyncio.Future[T]"]]


class _GroupFailed(Exception):
    """A claim of the group failed unexpectedly: the group's transaction is rolled back."""


class ClaimGrouper(Generic[T]):
    def __init__(self, shared: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
        self.shared = shared
        # Per event loop: tests may drive one app from several loops (threads).
        self._pending: dict[asyncio.AbstractEventLoop, _Pending[T]] = {}

    async def run(self, claim: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        queue = self._pending.get(loop)
        if queue is None:
            queue = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        queue.append((claim, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._pending.pop(loop, [])
        if len(group) == 1:
            results = [outcome(group[0][0])]
        else:
            try:
                with self.shared():
                    results = [self._in_group(claim) for claim, _ in group]
            except Exception:  # noqa: BLE001 - a claim, or the BEGIN or COMMIT: none of it stands
                results = [outcome(claim) for claim, _ in group]
        settle([future for _, future in group], results)

    @staticmethod
    def _in_group(claim: Callable[[], T]) -> T | BaseException:
        try:
            return claim()
        except Rejection as r:
            if r.status_code >= 500:
                raise _GroupFailed from r
            return r
        except Exception as e:
            raise _GroupFailed from e
