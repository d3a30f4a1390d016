"""Group commit: submissions that arrive together share one durable transaction (one fsync).

Every accepted annotation must be on disk before its receipt is sent, and an fsync costs far
more than the SQL around it (and blocks the event loop). So a submit route does not commit on
its own: it queues its checked `Submission` and awaits a future. The first submit in an event-
loop turn schedules a flush for the next turn; by then every request the loop read in the same
turn has queued too, and the flush runs them in order through `Repository.submit_many`: one
transaction, a savepoint each, one COMMIT with fsync. Only then are the futures resolved, so no
response leaves before its commit is durable. Under light load a group is one submission and
nothing waits; under heavy load the fsync that blocks the loop lets requests pile up in the
socket buffers, so groups grow exactly when it pays.

A refused submission (its `Rejection`) fails only its own request. An unexpected error from the
group transaction (which rolled it all back) makes each submission retry alone, so one bad
request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio

from api.server.clock import Clock
from api.server.repository import Repository, Submission, SubmitResult

_Pending = tuple[str, Submission, "asyncio.Future[SubmitResult]"]


class GroupCommitter:
    def __init__(self, repo: Repository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock
        # Per event loop: tests may drive one app from several loops (threads).
        self._pending: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}

    async def submit(self, annotator: str, submission: Submission) -> SubmitResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SubmitResult] = loop.create_future()
        queue = self._pending.get(loop)
        if queue is None:
            queue = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        queue.append((annotator, submission, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._pending.pop(loop, [])
        if not group:
            return
        results: list[SubmitResult | BaseException]
        try:
            results = list(
                self.repo.submit_many([(who, s) for who, s, _ in group], self.clock.now())
            )
        except Exception:  # noqa: BLE001 - isolated below: each retries alone
            results = [self._alone(who, s) for who, s, _ in group]
        for (_, _, future), result in zip(group, results, strict=True):
            if future.done():  # the request was cancelled (client gone); its commit stands
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _alone(self, annotator: str, submission: Submission) -> SubmitResult | BaseException:
        try:
            return self.repo.submit(annotator, submission, self.clock.now())
        except Exception as e:  # noqa: BLE001 - becomes that request's error
            return e
