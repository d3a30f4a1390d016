"""Failed authentications, counted and slowed per source address (issue 10 finding 3).

Every failed authentication (an unknown, revoked or expired token) is counted against the
request's source address and logged with that address and the count — never the token. Once an
address has `limit` failures within `window_s`, a token from it that this process has not
already authenticated is answered 429 with `Retry-After` (the seconds until its oldest failure
leaves the window) without being looked up: guessing is slowed to `limit` tries per window,
while a person behind the same address whose token was recently accepted keeps working.

Per process, in memory (a restart forgets; with `--workers N` each process counts on its own,
so an address gets at most N × limit tries per window). Behind a reverse proxy the source is
the proxy's address unless uvicorn is told to trust its forwarded-for header.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: Addresses remembered at once; the longest-quiet ones are forgotten first.
MAX_SOURCES = 10_000


class AuthThrottle:
    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        #: Every failure this process has seen (for logs and tests).
        self.total = 0

    def _recent(self, source: str, now: float) -> deque[float] | None:
        times = self._failures.get(source)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[source]
            return None
        return times

    def retry_after(self, source: str) -> int | None:
        """Seconds `source` must wait before its next unknown token is looked at; None: now."""
        now = self.clock()
        times = self._recent(source, now)
        if times is None or len(times) < self.limit:
            return None
        return max(1, math.ceil(times[-self.limit] + self.window_s - now))

    def failed(self, source: str) -> int:
        """Count one failure from `source`; how many it has within the window now."""
        now = self.clock()
        times = self._recent(source, now) or deque()
        times.append(now)
        self._failures[source] = times
        self._failures.move_to_end(source)
        while len(self._failures) > MAX_SOURCES:
            self._failures.popitem(last=False)
        self.total += 1
        return len(times)
