"""The mandatory welfare break (issue 11): a countdown, and nothing leased until it ends.

The server decides the break (after N escalation-flagged clips, or too long without a pause)
and refuses leases meanwhile; the prefetcher stops asking (`PrefetchState.ON_BREAK`), and this
screen covers the work until the time is up. Enter closes it only then. The countdown starts from
the refusal's Retry-After and follows GET /v1/me/welfare while it runs (the server's clock
decides; offline, the local countdown goes on)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from api.client import ApiError
from api.welfare import WelfareState

#: How often the screen asks the server how long the break has left (a read, never a lease).
POLL_S = 2.0


def countdown(seconds: float) -> str:
    """`m:ss` left, rounded up (a break never shows 0:00 while it still runs)."""
    whole = max(0, int(-(-seconds // 1)))
    return f"{whole // 60}:{whole % 60:02d}"


class BreakScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    BreakScreen { align: center middle; }
    BreakScreen > Vertical {
        width: 90%; max-width: 72; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    /* Labels are as wide as their text: at 80 columns the hint ran past the box, cut. */
    BreakScreen Label { width: 100%; }
    BreakScreen .title { text-style: bold; margin-bottom: 1; }
    BreakScreen #break-countdown { text-style: bold; margin: 1 0; }
    BreakScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "continue", "Back to work", priority=True),
    ]

    def __init__(
        self, until: float, reason: str, check: Callable[[], WelfareState] | None = None
    ) -> None:
        """`until`: the break's end on time.monotonic()'s clock; `reason`: the server's words;
        `check`: asks the server for this person's welfare state (called on a worker thread)."""
        super().__init__()
        self.until = until
        self.reason = reason
        self._check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="break"):
            yield Label("Break", classes="title")
            yield Static(self.reason, id="break-reason", markup=False)
            yield Label(self._countdown_text(), id="break-countdown")
            yield Label(self._hint(), id="break-hint", classes="hint")

    def on_mount(self) -> None:
        self.set_interval(0.5, self._tick)
        if self._check is not None:
            self.set_interval(POLL_S, self._poll)

    @work(thread=True, exclusive=True, group="break-poll", exit_on_error=False)
    def _poll(self) -> None:
        assert self._check is not None
        try:
            state = self._check()
        except ApiError:
            return  # offline: the local countdown goes on
        self.app.call_from_thread(self._follow, state)

    def _follow(self, state: WelfareState) -> None:
        now = time.monotonic()
        self.until = now + state.seconds_left if state.on_break else min(self.until, now)
        self._tick()

    @property
    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def extend(self, until: float, reason: str) -> None:
        """The server said the break goes on (asked again, later): follow its clock."""
        self.until, self.reason = until, reason
        self.query_one("#break-reason", Static).update(reason)
        self._tick()

    def _countdown_text(self) -> str:
        left = self.remaining
        return f"{countdown(left)} left" if left > 0 else "The break is over."

    def _hint(self) -> str:
        if self.remaining > 0:
            return "Step away from the screen. No new clips are leased until the break ends."
        return "Enter to go back to work"

    def _tick(self) -> None:
        self.query_one("#break-countdown", Label).update(self._countdown_text())
        self.query_one("#break-hint", Label).update(self._hint())

    def action_continue(self) -> None:
        if self.remaining > 0:
            self.notify(f"The break has {countdown(self.remaining)} left.", timeout=2)
            return
        self.dismiss(None)
