"""What the workbench's verbs return: plain values the screen draws, with no Textual in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from annotator.prefetch import PrefetchStatus, ReadyClip
from annotator.store.models import Draft, HistoryItem


@dataclass(frozen=True, slots=True)
class Form:
    """The annotate form as typed."""

    transcript: str
    intent: str | None
    flags: tuple[str, ...] = ()
    note: str | None = None
    cursor: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class Shown:
    """A clip is on the bench now; `draft` is the work saved on it earlier, if any."""

    clip: ReadyClip
    draft: Draft | None


@dataclass(frozen=True, slots=True)
class Waiting:
    """No clip ready: what the player bar says meanwhile."""

    message: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """Nothing was saved: (field, reason, message) for each problem, in form order."""

    problems: list[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class Refused:
    """The verb does not apply now (nothing on screen, too late to amend…): say why."""

    message: str
    severity: str = "warning"


@dataclass(frozen=True, slots=True)
class Submitted:
    key: str
    clip_id: str
    intent: str
    #: Escalation flags raised (the wellbeing notice names them), sorted.
    escalated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Amended:
    key: str


@dataclass(frozen=True, slots=True)
class Skipped:
    lease_id: str


@dataclass(frozen=True, slots=True)
class Reopened:
    """Undo: the last submission is on the bench to amend; `clip` its audio if still in memory."""

    item: HistoryItem
    clip: ReadyClip | None


@dataclass(frozen=True, slots=True)
class QueueNews:
    """What changed in the ready queue since the screen last asked."""

    status: PrefetchStatus
    #: The clip on screen lost its lease (the server may still take the work as late).
    current_lost: bool = False
    #: Offline copies that failed their check, each message naming the clip (deleted).
    damaged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where an escalation report is, from the outbox and the server's receipt."""

    flags: tuple[str, ...]
    #: When the server acknowledged it (local time), None while it waits in the outbox.
    delivered_at: datetime | None
    #: Submissions waiting in the outbox (this one included while undelivered).
    waiting: int
    #: What the connectivity owner says now (an undelivered report leaves at once when online).
    online: bool = False

    def text(self) -> str:
        names = " and ".join(f.replace("_", " ") for f in self.flags) or "an escalation"
        if self.delivered_at is not None:
            where = f"Delivered to supervisors at {self.delivered_at:%H:%M}."
        elif self.online:
            where = f"Sending to supervisors now ({self.waiting} waiting)."
        else:
            where = (
                f"Queued — reaches supervisors when you are back online ({self.waiting} waiting)."
            )
        return f"You flagged {names}. Take a moment if you need it.\n\n{where}"


@dataclass(frozen=True, slots=True)
class QuitSummary:
    """What quitting did with the leases this session held."""

    released: int = 0
    #: Expiry of each prefetched lease kept because it holds a draft.
    kept_drafts: tuple[datetime, ...] = ()
    #: Checked-out leases kept for offline work (until synced or `annotator sync --release`).
    kept_checkout: int = 0
    #: Leases that could not be released (server unreachable): they expire on the server.
    unreleased: tuple[datetime, ...] = ()
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts: list[str] = []
        if self.kept_drafts:
            n = len(self.kept_drafts)
            until = max(self.kept_drafts).astimezone()
            parts.append(f"kept {n} clip{'s' * (n != 1)} with a draft until {until:%H:%M}")
        if self.kept_checkout:
            n = self.kept_checkout
            parts.append(f"kept {n} checked-out clip{'s' * (n != 1)} for offline work")
        if self.released:
            parts.append(f"released {self.released}")
        if self.unreleased:
            n = len(self.unreleased)
            until = max(self.unreleased).astimezone()
            parts.append(
                f"could not release {n} (server unreachable): back in the queue by {until:%H:%M}"
            )
        return "; ".join(parts)
