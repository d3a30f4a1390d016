"""Pace arithmetic, with a fake clock."""

from __future__ import annotations

from annotator.session import (
    MIN_RATE_WINDOW_S,
    PACE_MIN_CLIPS,
    PACE_WINDOW_S,
    ClipClock,
    Session,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_pace_counts_and_median() -> None:
    clock = FakeClock()
    s = Session(daily_target=1000, shift_hours=9, now=clock)
    s.server_stats(today=40, clips_per_hour=110.0, median=31.0)
    assert s.pace().clips_per_hour == 110.0  # too early for our own rate: the server's
    for seconds in (20, 30, 40):
        c = s.clip_shown()
        clock.t += seconds
        s.clip_done(c)
    clock.t += MIN_RATE_WINDOW_S
    pace = s.pace()
    assert pace.session == 3 and pace.today == 43
    assert pace.median_seconds == 30
    assert pace.clips_per_hour == 110.0  # 3 clips are too few for our own rate: the server's
    for _ in range(PACE_MIN_CLIPS - 3):
        c = s.clip_shown()
        clock.t += 30
        s.clip_done(c)
    hours = (90 + MIN_RATE_WINDOW_S + 30 * (PACE_MIN_CLIPS - 3)) / 3600
    assert s.pace().clips_per_hour == PACE_MIN_CLIPS / hours


def test_no_rate_at_clip_zero() -> None:
    s = Session(daily_target=1000, shift_hours=9, now=FakeClock())
    assert s.pace().clips_per_hour is None
    s.server_stats(today=3, clips_per_hour=240.0, median=15.0)  # three quick clips this morning
    assert s.pace().clips_per_hour is None


def test_the_rate_is_smoothed_over_the_window_and_does_not_swing() -> None:
    clock = FakeClock()
    s = Session(daily_target=1000, shift_hours=9, now=clock)
    rates = []
    for n in range(60):  # a steady 30 s a clip (120/h), with one 3-minute clip and a quick run
        c = s.clip_shown()
        clock.t += 180 if n == 30 else (5 if 40 <= n < 45 else 30)
        s.clip_done(c)
        if (r := s.pace().clips_per_hour) is not None:
            rates.append(r)
    assert rates and all(90 <= r <= 150 for r in rates), rates
    clock.t += PACE_WINDOW_S + 1  # a break longer than the window: the rate says so
    assert s.pace().clips_per_hour == 0.0


def test_clip_clock_active_time_ignores_breaks() -> None:
    clock = FakeClock()
    c = ClipClock(clock)
    clock.t += 10
    c.activity()
    clock.t += 600  # a break
    c.activity()
    c.played()
    t = c.timings()
    assert t.active_seconds == 70.0
    assert t.plays == 1
