"""`StatsBar`: one line of throughput and connection state for the shift.

    12 this session · today 412/1000 −23 behind · 118/h · 27s/clip · 3 ready · ● online · miniaudio

Parts that do not fit are dropped, least useful first (audio backend, median, session count,
clips/hour, ready); today's count with the pace and the online state always stay.

Pace compares today's count with where an even pace to `target` would be now:
`expected = target × elapsed / shift_hours`, with `elapsed` measured from `shift_started_at`
(clamped to the shift). Within 1% of the target (at least one clip) it reads "on pace", else
"+12 ahead" / "−23 behind". Without `shift_started_at` it compares rates instead:
`clips_per_hour` against `target / shift_hours` ("on pace" / "−12/h behind").

Constructor: `StatsBar(*, clock=now_utc, name, id, classes)`; `clock` returns an aware datetime
(tests pass a fixed one). The line redraws itself every 30 s so the pace moves with the clock.

Until `rate_known` is set the rate reads "–/h" and, without `shift_started_at`, no pace words are
shown ("−111/h behind" at clip 0 only scolds); `rate_window` ("15 min") says what the rate is over.

Reactives (each only repaints):
    session_count (int), today_count (int), clips_per_hour (float),
    rate_known (bool, default True), rate_window (str, default ""),
    median_seconds (float | None), target (int, default 1000),
    shift_started_at (datetime | None, aware), shift_hours (float, default 9.0),
    prefetched (int): clips leased, downloaded and decoded ahead,
    link (str, default "online"): "online" | "reconnecting" | "offline" — drawn as
    `● online`, `◌ reconnecting`, `○ offline`; `online` (bool) reads and sets it
    (True → "online", False → "offline"),
    outbox (int): submissions waiting to sync (shown when > 0),
    conflicts (int): submissions the server refused with 409, kept locally (shown when > 0,
    never dropped), backend (str): audio backend name ("miniaudio", "none", …),
    backend_reason (str): why that backend was chosen (shown after the name while it fits).

Methods: `pace_text() -> str` (the pace part alone, e.g. "on pace").

Messages: none (display only).

Component classes: stats-bar--label, stats-bar--ahead, stats-bar--behind, stats-bar--online,
stats-bar--reconnecting, stats-bar--offline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from textual.content import Content
from textual.reactive import reactive
from textual.style import Style
from textual.widget import Widget

__all__ = ["LINK_STATES", "StatsBar", "now_utc", "pace"]

#: What `StatsBar.link` may hold (the connectivity owner's states, as plain words: no IO here).
LINK_STATES = ("online", "reconnecting", "offline")

_SEPARATOR = " · "
_REDRAW_SECONDS = 30.0


def now_utc() -> datetime:
    return datetime.now(UTC)


def pace(
    *,
    today_count: int,
    clips_per_hour: float,
    target: int,
    shift_hours: float,
    elapsed_hours: float | None,
) -> tuple[int, str]:
    """(sign, text): sign is -1 behind, 0 on pace, +1 ahead. See the module docstring."""
    if target <= 0 or shift_hours <= 0:
        return 0, f"{today_count}"
    tolerance = max(1.0, target * 0.01)
    if elapsed_hours is None:
        gap = clips_per_hour - target / shift_hours
        if abs(gap) < tolerance / shift_hours:
            return 0, "on pace"
        unit = f"{abs(gap):.0f}/h"
        return (1, f"+{unit} ahead") if gap > 0 else (-1, f"−{unit} behind")
    elapsed = min(max(elapsed_hours, 0.0), shift_hours)
    diff = today_count - target * elapsed / shift_hours
    if abs(diff) < tolerance:
        return 0, "on pace"
    return (1, f"+{round(diff)} ahead") if diff > 0 else (-1, f"−{round(-diff)} behind")


class StatsBar(Widget):
    """Throughput, pace, prefetch and connection state in one line."""

    DEFAULT_CSS = """
    StatsBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        & .stats-bar--label {
            color: $text-muted;
        }
        & .stats-bar--ahead {
            color: $text-success;
        }
        & .stats-bar--behind {
            color: $text-warning;
        }
        & .stats-bar--online {
            color: $text-success;
        }
        & .stats-bar--reconnecting {
            color: $text-warning;
        }
        & .stats-bar--offline {
            color: $text-error;
            text-style: bold;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "stats-bar--label",
        "stats-bar--ahead",
        "stats-bar--behind",
        "stats-bar--online",
        "stats-bar--reconnecting",
        "stats-bar--offline",
    }

    session_count: reactive[int] = reactive(0)
    """Clips submitted since the app started."""
    today_count: reactive[int] = reactive(0)
    """Clips submitted today (server's count plus unsynced ones)."""
    clips_per_hour: reactive[float] = reactive(0.0)
    rate_known: reactive[bool] = reactive(True)
    """False while there are too few clips for a rate to mean anything."""
    rate_window: reactive[str] = reactive("")
    """What the rate is measured over, e.g. "15 min" (shown after it)."""
    median_seconds: reactive[float | None] = reactive(None)
    """Median seconds spent on a clip; None until there is one."""
    target: reactive[int] = reactive(1000)
    """Daily target."""
    shift_started_at: reactive[datetime | None] = reactive(None)
    """When the shift started (aware datetime); None: pace from clips_per_hour."""
    shift_hours: reactive[float] = reactive(9.0)
    prefetched: reactive[int] = reactive(0)
    """Clips ready ahead (leased, downloaded, decoded)."""
    link: reactive[str] = reactive("online")
    """Connection to the queue server: one of LINK_STATES."""
    outbox: reactive[int] = reactive(0)
    """Submissions waiting to be synced."""
    conflicts: reactive[int] = reactive(0)
    """Submissions in conflict (409), kept on the conflicts list."""
    backend: reactive[str] = reactive("")
    """Audio backend name."""
    backend_reason: reactive[str] = reactive("")
    """Why that backend (e.g. "relay to 127.0.0.1:47001 (…)"); the first thing dropped."""
    insecure: reactive[bool] = reactive(False)
    """--insecure is on (plain http:// to a remote server allowed): shown, never dropped."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = now_utc,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._clock = clock

    def on_mount(self) -> None:
        self.set_interval(_REDRAW_SECONDS, self.refresh)

    @property
    def online(self) -> bool:
        return self.link == "online"

    @online.setter
    def online(self, value: bool) -> None:
        self.link = "online" if value else "offline"

    def validate_link(self, value: str) -> str:
        return value if value in LINK_STATES else "offline"  # unknown words are not "online"

    def _pace(self) -> tuple[int, str]:
        started = self.shift_started_at
        if started is None and not self.rate_known:
            return 0, ""
        elapsed = None if started is None else (self._clock() - started).total_seconds() / 3600
        return pace(
            today_count=self.today_count,
            clips_per_hour=self.clips_per_hour,
            target=self.target,
            shift_hours=self.shift_hours,
            elapsed_hours=elapsed,
        )

    def pace_text(self) -> str:
        return self._pace()[1]

    def _rate(self, label: Style) -> Content:
        if not self.rate_known:
            return Content.assemble("–", ("/h", label))
        window = (f" over {self.rate_window}", label) if self.rate_window else ""
        return Content.assemble(f"{self.clips_per_hour:.0f}", ("/h", label), window)

    def _with_reason(self, line: Content, width: int, has_backend: bool, label: Style) -> Content:
        """The backend's reason after its name (the line's last part), as much of it as fits."""
        reason = self.backend_reason
        if not (has_backend and reason):
            return line
        spare = width - line.cell_length - 3  # " (" and ")"
        if width > 0 and spare < min(12, len(reason)):
            return line
        if width > 0 and len(reason) > spare:
            reason = reason[: spare - 1].rstrip() + "…"
        return Content.assemble(line, (f" ({reason})", label))

    def render(self) -> Content:
        label = self.get_visual_style("stats-bar--label", partial=True)
        sign, pace_words = self._pace()
        pace_style: Style | str = ""
        if sign > 0:
            pace_style = self.get_visual_style("stats-bar--ahead", partial=True)
        elif sign < 0:
            pace_style = self.get_visual_style("stats-bar--behind", partial=True)
        if self.link == "online":
            state_style = self.get_visual_style("stats-bar--online", partial=True)
            state = Content.styled("● online", state_style)
        elif self.link == "reconnecting":
            state_style = self.get_visual_style("stats-bar--reconnecting", partial=True)
            state = Content.styled("◌ reconnecting", state_style)
        else:
            state_style = self.get_visual_style("stats-bar--offline", partial=True)
            state = Content.styled("○ offline", state_style)
        if self.outbox > 0:
            state = Content.assemble(state, " ", (f"outbox {self.outbox}", label))
        if self.conflicts > 0:
            noun = "conflict" if self.conflicts == 1 else "conflicts"
            warn = self.get_visual_style("stats-bar--offline", partial=True)
            state = Content.assemble(state, " ", (f"⚠ {self.conflicts} {noun}", warn))
        if self.insecure:
            warn = self.get_visual_style("stats-bar--offline", partial=True)
            state = Content.assemble(("⚠ INSECURE http ", warn), state)
        median = self.median_seconds
        # (drop order, content): higher numbers go first when the line is too narrow.
        parts: list[tuple[int, Content]] = [
            (3, Content.assemble(f"{self.session_count} ", ("this session", label))),
            (
                0,
                Content.assemble(
                    ("today ", label),
                    f"{self.today_count}/{self.target}",
                    (f" {pace_words}" if pace_words else "", pace_style),
                ),
            ),
            (2, self._rate(label)),
            (
                4,
                Content.assemble(f"{median:.0f}s" if median is not None else "–", ("/clip", label)),
            ),
            (1, Content.assemble(f"{self.prefetched} ", ("ready", label))),
            (0, state),
        ]
        backend: Content | None = None
        if self.backend:
            backend = Content.assemble(("audio ", label), self.backend)
            parts.append((5, backend))
        width = self.content_size.width
        while len(parts) > 1:
            line = Content(_SEPARATOR).join(content for _, content in parts)
            if width <= 0 or line.cell_length <= width:
                shown = backend is not None and any(c is backend for _, c in parts)
                return self._with_reason(line, width, shown, label)
            drop = max(parts, key=lambda part: part[0])
            if drop[0] == 0:
                return line
            parts.remove(drop)
        return Content(_SEPARATOR).join(content for _, content in parts)
