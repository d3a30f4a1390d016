"""An annotator's throughput, computed from their own annotations (pure: no storage, no clock).

Definitions (also shown to annotators, so they must stay simple):
- `today`: annotations created since 00:00 UTC.
- `clips_per_hour`: today's count over the hours from today's first annotation to now. The
  denominator is at least 15 minutes, so the first few clips of a day do not read as hundreds an
  hour.
- `median_seconds`: the median time spent on one of today's clips: the client's measured
  `timings.active_seconds` where it sent one, else the gap since the previous submission (gaps
  longer than 30 minutes are breaks and count as nothing).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from api.models import Stats
from api.server.repository import Activity

MIN_ELAPSED = timedelta(minutes=15)
MAX_GAP = timedelta(minutes=30)


def start_of_day(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def compute_stats(today: Sequence[Activity], total: int, now: datetime) -> Stats:
    count = len(today)
    if count == 0:
        return Stats(today=0, clips_per_hour=0.0, median_seconds=None, total=total)
    elapsed = max(now - today[0].created_at, MIN_ELAPSED)
    per_hour = count / (elapsed.total_seconds() / 3600)
    seconds: list[float] = []
    previous: datetime | None = None
    for item in today:
        if item.active_seconds is not None:
            seconds.append(item.active_seconds)
        elif previous is not None and item.created_at - previous <= MAX_GAP:
            seconds.append((item.created_at - previous).total_seconds())
        previous = item.created_at
    median = round(statistics.median(seconds), 2) if seconds else None
    per_hour = round(per_hour, 2)
    return Stats(
        today=count, clips_per_hour=per_hour, median_seconds=median, total=max(total, count)
    )
