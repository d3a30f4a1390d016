"""Small daemon threads that keep device calls and WSOLA renders off the TUI's event loop."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

S = TypeVar("S")


class LatestStateWorker(Generic[S]):
    """Applies only the most recent desired state; states overtaken while busy are skipped.

    Five seeks pressed in a row restart the device once, not five times. One-off tasks (e.g. "the
    clip ran out, stop the device") run in order before the pending state.
    """

    def __init__(
        self, name: str, apply: Callable[[S], None], on_error: Callable[[Exception], None]
    ) -> None:
        self._apply = apply
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: S | None = None
        self._has_pending = False
        self._tasks: list[Callable[[], None]] = []
        self._busy = False
        self._closing: Callable[[], None] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, state: S) -> None:
        with self._cond:
            if self._closing is not None:
                return
            self._pending, self._has_pending = state, True
            self._cond.notify()

    def call(self, task: Callable[[], None]) -> None:
        with self._cond:
            if self._closing is not None:
                return
            self._tasks.append(task)
            self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending or running (tests and `annotator doctor` use it)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closed or not (self._busy or self._has_pending or self._tasks),
                timeout,
            )

    def close(self, final: Callable[[], None], timeout: float) -> None:
        """Run `final` on the worker after pending work, then end the thread."""
        with self._cond:
            if self._closing is not None:
                return
            self._closing = final
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._has_pending or bool(self._tasks) or self._closing is not None
                )
                tasks, self._tasks = self._tasks, []
                has_state, state = self._has_pending, self._pending
                self._has_pending, self._pending = False, None
                closing = self._closing
                self._busy = True
            for task in tasks:
                self._guard(task)
            if has_state:
                self._guard(functools.partial(self._apply, state))  # type: ignore[arg-type]
            if closing is not None:
                self._guard(closing)
            with self._cond:
                self._busy = False
                if closing is not None:
                    self._closed = True
                self._cond.notify_all()
            if closing is not None:
                return

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        # Device libraries raise anything (MiniaudioError, SimpleaudioError, OSError); the
        # worker must survive so the player carries on muted and reports the reason.
        except Exception as exc:
            log.warning("audio worker: %s", exc, exc_info=True)
            self._on_error(exc)


class TaskThread:
    """A daemon thread running submitted jobs one after another (WSOLA renders)."""

    def __init__(self, name: str, on_error: Callable[[Exception], None]) -> None:
        self._on_error = on_error
        self._cond = threading.Condition()
        self._jobs: list[Callable[[], None]] = []
        self._busy = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            if not self._stopped:
                self._jobs.append(job)
                self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not (self._busy or self._jobs), timeout)

    def stop(self) -> None:
        """Drop queued jobs; a running render finishes in the background and is discarded."""
        with self._cond:
            self._stopped = True
            self._jobs.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or bool(self._jobs))
                if self._stopped:
                    return
                job = self._jobs.pop(0)
                self._busy = True
            try:
                job()
            except Exception as exc:  # a failed render must not kill the thread
                log.warning("audio render: %s", exc, exc_info=True)
                self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
