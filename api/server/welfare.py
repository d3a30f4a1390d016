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
from api.server.stats import start_of_day
from api.server.welfare_store import Break, WelfareStore
from api.welfare import (
    EXPOSURE_CATEGORIES,
    ON_BREAK_REASON,
    ExposureReport,
    PersonExposure,
    WelfarePolicy,
    WelfareState,
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
            f"from {dt(current.ends_at).isoformat(timespec='seconds')} (in {wait} s)",
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
        now = self.clock.now()
        start = since if since is not None else start_of_day(now)
        until = min(now, start + timedelta(hours=hours))
        t0, t1 = ts(start), ts(until)
        per_clip: dict[tuple[str, str], set[str]] = defaultdict(set)
        for person, clip_id, flags in self.store.heard_flags(t0, t1):
            per_clip[(person, clip_id)].update(flags)
        counts: dict[str, dict[str, int]] = defaultdict(zero_counts)
        for (person, _clip), given in per_clip.items():
            row = counts[person]
            for category in EXPOSURE_CATEGORIES:
                if category in given:
                    row[category] += 1
        breaks = self.store.breaks_between(t0, ts(now))
        taken: dict[str, int] = defaultdict(int)
        on_break: set[str] = set()
        for b in breaks:
            taken[b.person] += 1
            if b.started_at <= ts(now) < b.ends_at:
                on_break.add(b.person)
        opt_outs = self.store.all_opt_outs()
        people = sorted(set(counts) | set(taken) | set(opt_outs))
        return ExposureReport(
            since=start,
            until=until,
            categories=list(EXPOSURE_CATEGORIES),
            people=[
                PersonExposure(
                    person=name,
                    counts=counts[name] if name in counts else zero_counts(),
                    breaks=taken.get(name, 0),
                    on_break=name in on_break,
                    opt_outs=opt_outs.get(name, []),
                )
                for name in people
            ],
        )
