"""Welfare rules (issue 11): the break policy, exposure counts and opt-outs.

Breaks are decided from what the server already holds (each person's submission times and the
escalation flags on those clips) and recorded in `welfare_breaks` when they are due, so every
process and both backends agree. A break is due at the moment the Nth escalation-flagged clip
since the last break was submitted, or `max_continuous_minutes` into a run of work with no pause
of `break_minutes`; it lasts `break_minutes` from then. During it, leases are refused with 429
`on_break` and Retry-After (submissions, renewals and releases still work: no work is lost).
A pause as long as a break counts as one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

from api.server.clock import Clock
from api.server.errors import Rejection
from api.server.repository import Principal
from api.server.settings import ServerSettings
from api.server.sql_repo import ClaimGate, SqlRepository, dt, ts
from api.server.welfare_store import Break, WelfareStore
from api.welfare import (
    EXPOSURE_CATEGORIES,
    ON_BREAK_REASON,
    ExposureReport,
    PersonExposure,
    WelfarePolicy,
    WelfareState,
    in_words,
)

#: How far back a first evaluation looks (a person's first lease of the day).
LOOKBACK_S = 24 * 3600.0
#: Breaks recorded in one evaluation at most (work synced late can owe several, long past).
MAX_BREAKS_PER_LOOK = 50


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(EXPOSURE_CATEGORIES, 0)


class WelfareService:
    def __init__(
        self, settings: ServerSettings, clock: Clock, repo: SqlRepository, flag_ids: set[str]
    ) -> None:
        self.clock = clock
        self.store = WelfareStore(repo)
        self.flag_ids = flag_ids
        self.shift_gap_hours = settings.shift_gap_hours
        self.policy = WelfarePolicy(
            break_after_flagged=settings.break_after_flagged,
            break_minutes=settings.break_minutes,
            max_continuous_minutes=settings.max_continuous_minutes,
        )

    # -- breaks

    def state(self, person: str) -> WelfareState:
        now = ts(self.clock.now())
        current, flagged, working = self._evaluate(person, now)
        return WelfareState(
            policy=self.policy,
            on_break=current is not None,
            break_ends_at=dt(current.ends_at) if current else None,
            break_reason=current.reason if current else None,
            seconds_left=max(1, math.ceil(current.ends_at - now)) if current else 0,
            flagged_since_break=flagged,
            working_since=dt(working) if working is not None else None,
            opt_outs=self.store.opt_outs(person),
        )

    def claim_gate(self, person: str, now: float) -> ClaimGate | None:
        """What `refuse_lease_on_break` would let through without a word, as a condition the
        claim's own statement checks (no statement of its own per lease request); None with
        breaks off. When it is closed the claim leases nothing and the caller runs
        `refuse_lease_on_break`, which records a break that came due and refuses (or finds it
        already over)."""
        p = self.policy
        rest = p.break_minutes * 60.0
        if rest <= 0 or (p.break_after_flagged == 0 and p.max_continuous_minutes == 0):
            return None
        return self.store.claim_gate(
            person, now, p.break_after_flagged, rest, p.max_continuous_minutes * 60.0, LOOKBACK_S
        )

    def refuse_lease_on_break(self, who: Principal) -> None:
        now = ts(self.clock.now())
        current, _, _ = self._evaluate(who.name, now)
        if current is None:
            return
        wait = max(1, math.ceil(current.ends_at - now))
        why = (
            f"{self.policy.break_after_flagged} escalation-flagged clips"
            if current.reason == "flagged"
            else f"{self.policy.max_continuous_minutes} minutes of work without a break"
        )
        raise Rejection(
            429,
            ON_BREAK_REASON,
            f"time for a {self.policy.break_minutes}-minute break after {why}; new clips "
            f"from {dt(current.ends_at):%H:%M} UTC ({in_words(wait)})",
            headers={"Retry-After": str(wait)},
        )

    def _evaluate(self, person: str, now: float) -> tuple[Break | None, int, float | None]:
        """(the break on now or None, flagged clips since the last break, start of the current
        run of work or None), recording any break that has come due."""
        p = self.policy
        rest = p.break_minutes * 60.0
        if rest <= 0 or (p.break_after_flagged == 0 and p.max_continuous_minutes == 0):
            return None, 0, None  # breaks off: not one query on the lease path
        last = self.store.last_break(person)
        if last is not None and now < last.ends_at:
            return last, 0, None
        since = last.ends_at if last is not None else now - LOOKBACK_S
        for _ in range(MAX_BREAKS_PER_LOOK):
            times, flagged = self.store.work_times(person, since)
            due, run_start = self._due(times, flagged, now, rest)
            if due is None:
                return None, len(flagged), run_start
            taken = Break(person, due[0], due[0] + rest, due[1])
            self.store.add_break(taken)
            if now < taken.ends_at:
                return taken, 0, None
            since = taken.ends_at
        return None, 0, None

    def _due(
        self, times: list[float], flagged: list[float], now: float, rest: float
    ) -> tuple[tuple[float, str] | None, float | None]:
        p = self.policy
        candidates: list[tuple[float, str]] = []
        n = p.break_after_flagged
        if n > 0 and len(flagged) >= n:
            candidates.append((flagged[n - 1], "flagged"))
        run_start: float | None = None
        limit = p.max_continuous_minutes * 60.0
        if times:
            start, prev = times[0], times[0]
            runs: list[tuple[float, float]] = []
            for t in times[1:]:
                if t - prev >= rest:
                    runs.append((start, prev))
                    start = t
                prev = t
            going = now - prev < rest
            runs.append((start, now if going else prev))
            run_start = start if going else None
            if limit > 0:
                for begin, end in runs:
                    if end - begin >= limit:
                        candidates.append((begin + limit, "continuous"))
                        break
        if not candidates:
            return None, run_start
        return min(candidates), run_start

    # -- opt-outs

    def set_opt_outs(self, person: str, categories: list[str]) -> list[str]:
        unknown = sorted(set(categories) - self.flag_ids)
        if unknown:
            raise Rejection(
                422,
                "unknown_flag",
                f"not a flag of this server's taxonomy: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.flag_ids))}",
                field="categories",
            )
        self.store.set_opt_outs(person, categories, ts(self.clock.now()))
        return self.store.opt_outs(person)

    # -- exposure

    def exposure(self, since: datetime | None, hours: float) -> ExposureReport:
        """Per person, clips anyone flagged in an exposure category that they annotated or
        skipped: from `since` (for `hours`), or, without one, over each person's own shift —
        their current (or latest) work period within the last `hours`: it starts at their first
        activity after a pause of at least `shift_gap_hours`."""
        now = self.clock.now()
        t_now = ts(now)
        gap = self.shift_gap_hours * 3600.0
        if since is not None:
            start = since
            until = min(now, start + timedelta(hours=hours))
        else:
            start, until = now - timedelta(hours=hours), now
        t0, t1 = ts(start), ts(until)
        shifts: dict[str, float] = {}
        on_shift: set[str] = set()
        for person, times in self.store.activity(t0, t1).items():
            shifts[person] = shift_start(times, gap) if since is None else times[0]
            if t_now - times[-1] < gap:
                on_shift.add(person)
        per_clip: dict[tuple[str, str], set[str]] = defaultdict(set)
        for person, clip_id, flags, at in self.store.heard_flags(t0, t1):
            if since is not None or at >= shifts.get(person, t1):
                per_clip[(person, clip_id)].update(flags)
        counts: dict[str, dict[str, int]] = defaultdict(zero_counts)
        for (person, _clip), given in per_clip.items():
            row = counts[person]
            for category in EXPOSURE_CATEGORIES:
                if category in given:
                    row[category] += 1
        taken: dict[str, int] = defaultdict(int)
        on_break: set[str] = set()
        for b in self.store.breaks_between(t0, t_now):
            if since is None and b.ends_at < shifts.get(b.person, t_now):
                continue  # a break before this person's shift began
            taken[b.person] += 1
            if b.started_at <= t_now < b.ends_at:
                on_break.add(b.person)
        opt_outs = self.store.all_opt_outs()
        people = sorted(set(counts) | set(taken) | set(opt_outs) | set(shifts))
        if since is None:
            start = dt(min(shifts.values())) if shifts else now
        return ExposureReport(
            since=start,
            until=until,
            categories=list(EXPOSURE_CATEGORIES),
            shift_gap_hours=self.shift_gap_hours if since is None else None,
            people=[
                PersonExposure(
                    person=name,
                    counts=counts[name] if name in counts else zero_counts(),
                    breaks=taken.get(name, 0),
                    on_break=name in on_break,
                    opt_outs=opt_outs.get(name, []),
                    shift_started_at=dt(shifts[name]) if name in shifts else None,
                    on_shift=name in on_shift,
                )
                for name in people
            ],
        )


def shift_start(times: list[float], gap_s: float) -> float:
    """The start of the latest work period in `times` (sorted, non-empty): the first activity
    after the last pause of at least `gap_s` (or the first activity of all)."""
    i = len(times) - 1
    while i > 0 and times[i] - times[i - 1] < gap_s:
        i -= 1
    return times[i]
