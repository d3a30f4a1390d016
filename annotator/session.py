"""One sitting's bookkeeping: which clip is on screen, how long it took, and the pace figures.

No Textual: the annotate screen feeds it events (shown, played, key pressed, submitted) and reads
plain numbers back, so the arithmetic is tested without a terminal.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from api.models import Timings

#: A gap between keypresses longer than this is a break, not work (for active_seconds).
IDLE_AFTER_S = 60.0
#: Below this much sitting time a measured rate is noise (one clip in 5 s is not 720/h).
MIN_RATE_WINDOW_S = 120.0
#: How many recent clip durations the median is taken over.
MEDIAN_WINDOW = 200


@dataclass(frozen=True, slots=True)
class Pace:
    """What the stats bar shows."""

    session: int
    today: int
    clips_per_hour: float
    median_seconds: float | None
    daily_target: int
    #: Clips ahead (+) or behind (−) the straight line from shift start to the daily target.
    ahead: int


class ClipClock:
    """Timing of the clip on screen: shown → submitted, active time, number of plays."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.shown_at = datetime.now(UTC)
        self._shown = now()
        self._last_activity = self._shown
        self._active = 0.0
        self.plays = 0

    def activity(self) -> None:
        now = self._now()
        gap = now - self._last_activity
        self._active += min(gap, IDLE_AFTER_S)
        self._last_activity = now

    def played(self) -> None:
        self.plays += 1

    def elapsed(self) -> float:
        return self._now() - self._shown

    def timings(self) -> Timings:
        self.activity()
        return Timings(
            shown_at=self.shown_at,
            submitted_at=datetime.now(UTC),
            active_seconds=round(min(self._active, 24 * 3600), 3),
            plays=min(self.plays, 10_000),
        )


class Session:
    """Counters for this sitting; `today_base` comes from the server's /v1/me/stats."""

    def __init__(
        self,
        *,
        daily_target: int = 1000,
        shift_hours: float = 9.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._now = now
        self.daily_target = daily_target
        self.shift_hours = shift_hours
        self.started = now()
        self.shown = 0  # clips put on screen (the header's position)
        self.done = 0  # clips submitted this session
        self.today_base = 0  # the server's count when we last asked
        self._done_since_base = 0
        self._durations: deque[float] = deque(maxlen=MEDIAN_WINDOW)
        self.server_clips_per_hour: float | None = None
        self.server_median: float | None = None

    def clip_shown(self) -> ClipClock:
        self.shown += 1
        return ClipClock(self._now)

    def clip_done(self, clock: ClipClock) -> None:
        self.done += 1
        self._done_since_base += 1
        self._durations.append(clock.elapsed())

    def clip_undone(self) -> None:
        """An amendment replaces a submission: it is not an extra clip."""

    def server_stats(self, today: int, clips_per_hour: float, median: float | None) -> None:
        self.today_base = today
        self._done_since_base = 0
        self.server_clips_per_hour = clips_per_hour
        self.server_median = median

    def pace(self) -> Pace:
        elapsed = self._now() - self.started
        hours = max(elapsed / 3600, 1e-9)
        if self.done and elapsed >= MIN_RATE_WINDOW_S:
            rate = self.done / hours
        else:
            rate = self.server_clips_per_hour or 0.0
        median = statistics.median(self._durations) if self._durations else self.server_median
        today = self.today_base + self._done_since_base
        # The straight line from the start of this sitting to the target at the end of the shift.
        expected = self.daily_target * min(1.0, hours / max(self.shift_hours, 0.1))
        return Pace(
            session=self.done,
            today=today,
            clips_per_hour=rate,
            median_seconds=median,
            daily_target=self.daily_target,
            ahead=round(self.done - expected),
        )
