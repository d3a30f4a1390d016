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
#: The rate is taken over the submissions of the last this-many seconds (said on the bar): long
#: enough that one slow clip or a quick run does not swing it, short enough to follow a break.
PACE_WINDOW_S = 15 * 60.0
#: No rate (and no "ahead"/"behind") before this many clips: at clip 0 it would only scold.
PACE_MIN_CLIPS = 10
#: How many recent clip durations the median is taken over.
MEDIAN_WINDOW = 200


@dataclass(frozen=True, slots=True)
class Pace:
    """What the stats bar shows."""

    session: int
    today: int
    #: Over the last `PACE_WINDOW_S` (None until it means something: see `Session.pace`).
    clips_per_hour: float | None
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
        self._done_at: deque[float] = deque()  # when each recent submission was made
        self.server_clips_per_hour: float | None = None
        self.server_median: float | None = None

    def clip_shown(self) -> ClipClock:
        self.shown += 1
        return ClipClock(self._now)

    def clip_done(self, clock: ClipClock) -> None:
        self.done += 1
        self._done_since_base += 1
        self._durations.append(clock.elapsed())
        self._done_at.append(self._now())

    def clip_undone(self) -> None:
        """An amendment replaces a submission: it is not an extra clip."""

    def server_stats(self, today: int, clips_per_hour: float, median: float | None) -> None:
        self.today_base = today
        self._done_since_base = 0
        self.server_clips_per_hour = clips_per_hour
        self.server_median = median

    def pace(self) -> Pace:
        """The figures; the rate is this sitting's over the last PACE_WINDOW_S once it has
        PACE_MIN_CLIPS clips and MIN_RATE_WINDOW_S of time, else the server's rate for today
        once today has that many clips, else None (nothing worth showing yet)."""
        now = self._now()
        elapsed = now - self.started
        hours = max(elapsed / 3600, 1e-9)
        while self._done_at and self._done_at[0] < now - PACE_WINDOW_S:
            self._done_at.popleft()
        rate: float | None = None
        if self.done >= PACE_MIN_CLIPS and elapsed >= MIN_RATE_WINDOW_S:
            span = min(PACE_WINDOW_S, elapsed)
            rate = len(self._done_at) / (span / 3600)
        elif self.today_base >= PACE_MIN_CLIPS and self.server_clips_per_hour is not None:
            rate = self.server_clips_per_hour
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
