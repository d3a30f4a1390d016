"""Group commit: submissions that arrive together share one durable transaction (one fsync).

Every accepted annotation must be on disk before its receipt is sent, and an fsync costs far
more than the SQL around it. So a submit route does not commit on its own: it queues its checked
`Submission` and awaits a future. The first submit in an event-loop turn schedules a flush for
the next turn; by then every request the loop read in the same turn has queued too, and the
flush runs them in order through `Repository.submit_many`: one transaction, a savepoint each, one
flush to stable storage. Only then are the futures resolved, so no response leaves before its
commit is durable. Under light load a group is one submission and nothing waits; under heavy
load requests pile up while a flush runs, so groups grow exactly when it pays.

Where the backend can take the flush apart from the COMMIT (`Repository.defers_sync`: SQLite's
fdatasync of its WAL), the group commits on the loop and its flush runs on one named thread
(`sync_commits` touches no connection), so the loop goes on serving claims and audio instead of
blocking in the fsync. Submits that arrive meanwhile wait for it to finish and then form the next
group, so there is one flush in flight per loop and groups keep their size. The hop to the thread
is paid only when the loop has other requests to serve (`in_flight`, `api.server.in_flight`):
for a group whose requests are all the loop is serving, as an idle annotator's submit is, the
same flush runs on the loop. A flush that fails fails the requests it was to make durable (each
gets the error; a retry under the same Idempotency-Key is answered from what was committed, once
a later flush has made it durable).

A refused submission (its `Rejection`) fails only its own request. An unexpected error from the
group transaction (which rolled it all back) makes each submission retry alone (flushed at its
COMMIT), so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from api.server.clock import Clock
from api.server.errors import Rejection
from api.server.repository import Repository, Submission, SubmitResult

_Pending = tuple[str, Submission, "asyncio.Future[SubmitResult]"]
_Results = list[SubmitResult | BaseException]
T = TypeVar("T")

#: One thread for every flush of the process: flushes of one file queue behind each other
#: anyway, and an idle thread costs nothing.
_SYNC_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotator-commit-sync")


class GroupCommitter:
    def __init__(
        self, repo: Repository, clock: Clock, in_flight: Callable[[], int] | None = None
    ) -> None:
        self.repo = repo
        self.clock = clock
        #: Requests the running loop is serving (None: unknown, so a deferrable flush is deferred).
        self.in_flight = in_flight
        # Per event loop: tests may drive one app from several loops (threads).
        self._pending: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        #: Loops whose last group's flush is running: their next group waits for it.
        self._syncing: set[asyncio.AbstractEventLoop] = set()

    async def submit(self, annotator: str, submission: Submission) -> SubmitResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SubmitResult] = loop.create_future()
        queue = self._pending.get(loop)
        if queue is None:
            queue = self._pending[loop] = []
            if loop not in self._syncing:  # else the running flush's end starts this group
                loop.call_soon(self._flush, loop)
        queue.append((annotator, submission, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._pending.pop(loop, [])
        if not group:
            return
        deferred = self.repo.defers_sync
        results: _Results
        try:
            results = list(
                self.repo.submit_many(
                    [(who, s) for who, s, _ in group], self.clock.now(), sync=not deferred
                )
            )
        except Exception:  # noqa: BLE001 - isolated below: each retries alone
            results = [self._alone(who, s) for who, s, _ in group]
            deferred = False  # each was flushed at its own COMMIT
        if not deferred:
            self._resolve(group, results)
            return
        if self.in_flight is not None and self.in_flight() <= len(group):
            # Nothing else is waiting on the loop: the hop to the thread would only add to the
            # wait of the requests this flush answers.
            try:
                self.repo.sync_commits()
            except Exception as e:  # noqa: BLE001 - fails what it was to make durable
                results = _unflushed(results, e)
            self._resolve(group, results)
            return
        try:
            flush = loop.run_in_executor(_SYNC_THREAD, self.repo.sync_commits)
        except RuntimeError as e:  # the thread is gone: the interpreter is shutting down
            self._resolve(group, _unflushed(results, e))
            return
        self._syncing.add(loop)
        flush.add_done_callback(lambda done: self._synced(loop, group, results, done))

    def _synced(
        self,
        loop: asyncio.AbstractEventLoop,
        group: list[_Pending],
        results: _Results,
        done: asyncio.Future[None],
    ) -> None:
        self._syncing.discard(loop)
        error: BaseException | None = (
            RuntimeError("the commit's flush was cancelled")
            if done.cancelled()
            else done.exception()
        )
        self._resolve(group, results if error is None else _unflushed(results, error))
        if self._pending.get(loop):
            self._flush(loop)

    @staticmethod
    def _resolve(group: list[_Pending], results: _Results) -> None:
        settle([future for _, _, future in group], results)

    def _alone(self, annotator: str, submission: Submission) -> SubmitResult | BaseException:
        return outcome(lambda: self.repo.submit(annotator, submission, self.clock.now()))


def _unflushed(results: _Results, error: BaseException) -> _Results:
    """A group's results when its flush failed: what was refused changed nothing and stays
    refused; the rest is not known to be durable, so it fails with `error`."""
    return [r if isinstance(r, Rejection) else error for r in results]


def outcome(call: Callable[[], T]) -> T | BaseException:
    """`call()`'s result, or the exception it raised: what its request is to be answered with."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - becomes that request's error
        return e


def settle(futures: Sequence[asyncio.Future[T]], results: Sequence[T | BaseException]) -> None:
    """Hand each waiting request its result (an exception is raised to it)."""
    for future, result in zip(futures, results, strict=True):
        if future.done():  # the request was cancelled (client gone); what it did stands
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
