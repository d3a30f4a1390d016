"""Pace arithmetic, with a fake clock."""

from __future__ import annotations

from annotator.session import MIN_RATE_WINDOW_S, ClipClock, Session


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
    hours = (90 + MIN_RATE_WINDOW_S) / 3600
    assert pace.clips_per_hour == 3 / hours


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
