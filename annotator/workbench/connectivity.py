"""The one owner of "can we reach the server?".

The prefetch thread and the sync thread report every answer and every transport failure here; a
heartbeat thread checks `/v1/health` when neither has heard from the server for a while, so the
state is true within about `interval` seconds of a real change even when nobody is submitting.
When the server answers again, every registered waker runs (the prefetcher's and the sync
engine's `wake`), so neither sits out its own backoff after the other saw the server.

States: ONLINE; RECONNECTING (a failure was just seen — a report or one failed health check — and
a check follows within `RECHECK_S`); OFFLINE (that check failed too; checked every `interval`).
No Textual here: listeners are plain callbacks run on the reporting thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

log = logging.getLogger(__name__)

#: Seconds between health checks while nothing else has talked to the server.
HEARTBEAT_S = 1.0
#: A health check that takes longer than this counts as a failure (a black-holed network).
PROBE_TIMEOUT_S = 1.5
#: After a first failure, the next check comes this soon: a blip is not called offline, and a
#: server that is really gone is called offline well within 2 s of going.
RECHECK_S = 0.25


class Link(StrEnum):
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class ConnectivityState:
    link: Link
    #: Why it is not online (no tokens, no transcripts: a transport error's text).
    reason: str = ""
    #: time.monotonic() of the last change.
    since: float = 0.0

    @property
    def online(self) -> bool:
        return self.link is Link.ONLINE


class Connectivity:
    """Thread-safe. `probe` raises on failure (any exception) and returns on an answer."""

    def __init__(
        self,
        probe: Callable[[], object] | None,
        *,
        interval: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._state = ConnectivityState(Link.ONLINE, "", clock())
        self._last_answer = 0.0
        self._listeners: list[Callable[[ConnectivityState], None]] = []
        self._wakers: list[Callable[[], None]] = []
        self._check_now = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> ConnectivityState:
        with self._lock:
            return self._state

    def add_listener(self, listener: Callable[[ConnectivityState], None]) -> None:
        self._listeners.append(listener)

    def add_waker(self, waker: Callable[[], None]) -> None:
        """Called when the server answers again after being away."""
        self._wakers.append(waker)

    # -- reports (from any thread)

    def reported_ok(self, source: str) -> None:
        with self._lock:
            self._last_answer = self._clock()
        self._move(Link.ONLINE, "", source)

    def reported_failure(self, source: str, reason: str) -> None:
        with self._lock:
            link = self._state.link
        # One failure is a hint; the heartbeat checks it at once before calling it offline.
        self._move(Link.RECONNECTING if link is Link.ONLINE else Link.OFFLINE, reason, source)
        self._check_now.set()

    def check(self) -> ConnectivityState:
        """Ask the server now (blocking, at most about PROBE_TIMEOUT_S)."""
        if self._probe is None:
            return self.state
        try:
            self._probe()
        except Exception as e:  # noqa: BLE001 - any failure to answer is "not reachable"
            with self._lock:
                first = self._state.link is Link.ONLINE
            self._move(Link.RECONNECTING if first else Link.OFFLINE, _reason(e), "heartbeat")
        else:
            with self._lock:
                self._last_answer = self._clock()
            self._move(Link.ONLINE, "", "heartbeat")
        return self.state

    # -- the heartbeat

    def start(self) -> None:
        if self._probe is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="annotator-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._check_now.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        close = getattr(self._probe, "close", None)
        if callable(close):
            _quietly(close)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                quiet_for = self._clock() - self._last_answer
                online = self._state.link is Link.ONLINE
            if not online or quiet_for >= self.interval:
                state = self.check()
                wait = RECHECK_S if state.link is Link.RECONNECTING else self.interval
            else:
                wait = self.interval - quiet_for
            self._check_now.wait(wait)
            self._check_now.clear()

    def _move(self, link: Link, reason: str, source: str) -> None:
        with self._lock:
            before = self._state
            if before.link is link and (link is Link.ONLINE or before.reason == reason):
                return
            self._state = ConnectivityState(link, reason, self._clock())
            state = self._state
        log.info("connectivity %s → %s (%s)", before.link, link, source)
        if link is Link.ONLINE and before.link is not Link.ONLINE:
            for waker in self._wakers:
                _quietly(waker)
        for listener in self._listeners:
            _quietly(partial(listener, state))


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text or type(e).__name__


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # a listener must never stop the thread that reported
        log.exception("connectivity listener failed")
