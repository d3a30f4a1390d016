"""The escalation list's rules, without Textual: filters, service-level countdowns, what is new.

The server sends the whole list on every change (`EscalationPage`, sorted overdue first, then by
severity, oldest first); the board keeps the last page, tells which escalations arrived since the
page before (the bell rings for those), and shapes each row's moving parts (age, countdown) from
the page's clock plus the time that has passed here since, so the countdown runs between pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic

from api.models import EscalationPage, EscalationState, EscalationSummary


@dataclass(frozen=True)
class StateFilter:
    label: str
    states: frozenset[EscalationState]


#: The filter key cycles through these; "active" (not yet resolved) is where a shift starts.
FILTERS: tuple[StateFilter, ...] = (
    StateFilter("active", frozenset({EscalationState.OPEN, EscalationState.ACKNOWLEDGED})),
    StateFilter("open", frozenset({EscalationState.OPEN})),
    StateFilter("acknowledged", frozenset({EscalationState.ACKNOWLEDGED})),
    StateFilter("resolved", frozenset({EscalationState.RESOLVED})),
    StateFilter("all", frozenset(EscalationState)),
)

SEVERITY_NAMES = {0: "self-harm", 1: "distress", 2: "flagged", 3: "cannot judge"}


def severity_name(row: EscalationSummary) -> str:
    return SEVERITY_NAMES.get(row.severity, f"level {row.severity}")


def span(seconds: float) -> str:
    """A duration as a person reads it on a list: 45s, 12m, 3h05, 2d04."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}"
    return f"{s // 86400}d{s % 86400 // 3600:02d}"


@dataclass(frozen=True)
class Countdown:
    """What the service level says about one row right now."""

    text: str
    overdue: bool


def countdown(row: EscalationSummary, now: datetime) -> Countdown:
    """Time left to acknowledge (open) or to resolve (acknowledged); resolved rows have none."""
    if row.state is EscalationState.RESOLVED:
        return Countdown("—", overdue=False)
    due, what = (
        (row.sla.ack_due_at, "ack")
        if row.state is EscalationState.OPEN
        else (row.sla.resolve_due_at, "resolve")
    )
    left = (due - now).total_seconds()
    if left <= 0:
        return Countdown(f"{what} overdue {span(left)}", overdue=True)
    # The resolve deadline can pass while the row is still open: say the nearer failure.
    if row.state is EscalationState.OPEN and row.sla.resolve_due_at <= now:
        return Countdown("resolve overdue", overdue=True)
    return Countdown(f"{what} in {span(left)}", overdue=False)


#: What the console long-polls: everything not yet resolved (a bounded list, which the bell
#: watches). Resolved escalations are fetched beside it only while a filter shows them.
ACTIVE = (EscalationState.OPEN, EscalationState.ACKNOWLEDGED)
RESOLVED_SHOWN = 200


@dataclass
class Board:
    """The last pages and the filter; `apply(page)` returns the escalations new since the last."""

    clock: Callable[[], float] = monotonic
    page: EscalationPage | None = None
    """The active escalations (open, acknowledged): the long-polled list."""
    resolved: EscalationPage | None = None
    """The latest resolved ones, while the filter shows them."""
    filter_index: int = 0
    _seen: set[str] = field(default_factory=set)
    _page_at: float = 0.0

    @property
    def filter(self) -> StateFilter:
        return FILTERS[self.filter_index]

    @property
    def shows_resolved(self) -> bool:
        return EscalationState.RESOLVED in self.filter.states

    def cycle_filter(self) -> StateFilter:
        self.filter_index = (self.filter_index + 1) % len(FILTERS)
        return self.filter

    def apply(self, page: EscalationPage) -> list[EscalationSummary]:
        """Take a new page of active escalations; the rows never seen before (none on the first
        page: those were waiting when the console opened, not arriving)."""
        first = self.page is None
        self.page = page
        self._page_at = self.clock()
        fresh = [r for r in page.escalations if r.escalation_id not in self._seen]
        self._seen.update(r.escalation_id for r in page.escalations)
        return [] if first else fresh

    def apply_resolved(self, page: EscalationPage | None) -> None:
        self.resolved = page

    def now(self) -> datetime:
        """The server's clock: the page's `now` plus the time passed here since it came."""
        if self.page is None:
            raise LookupError("no page yet")
        return self.page.now + timedelta(seconds=self.clock() - self._page_at)

    def _all(self) -> list[EscalationSummary]:
        active = list(self.page.escalations) if self.page is not None else []
        ids = {r.escalation_id for r in active}
        done = self.resolved.escalations if self.resolved is not None else []
        # A row in both (reopened since the resolved page came) is shown as the active page has it.
        return active + [r for r in done if r.escalation_id not in ids]

    def rows(self) -> list[EscalationSummary]:
        """The rows the filter lets through, overdue-now first, keeping the server's order
        otherwise (severity, then oldest)."""
        if self.page is None:
            return []
        states = self.filter.states
        shown = [r for r in self._all() if r.state in states]
        now = self.now()
        return sorted(shown, key=lambda r: not (r.overdue or countdown(r, now).overdue))

    def find(self, escalation_id: str) -> EscalationSummary | None:
        return next((r for r in self._all() if r.escalation_id == escalation_id), None)

    def counts(self) -> dict[EscalationState, int]:
        rows: Sequence[EscalationSummary] = self._all()
        return {s: sum(1 for r in rows if r.state is s) for s in EscalationState}
