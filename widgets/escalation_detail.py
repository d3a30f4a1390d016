"""`EscalationDetail`: everything about the selected escalation, for the supervisor to judge.

Display only; every text that came from a person (transcript, notes, names) is drawn through
`api.text_safety.for_terminal` (control and bidi characters shown as visible escapes) inside Rich
`Text`, never as markup.

API:
    show(detail, now): draw an `api.models.EscalationDetail` (None: the empty-list message);
        `now` is the server's clock, for the relative times.
    plain_text(width=120): what is drawn, as plain text (for tests and copying).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from api.models import EscalationDetail as Detail
from api.models import EscalationSummary
from api.text_safety import for_terminal

__all__ = ["EscalationDetail", "when"]


def _span(seconds: int) -> str:
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
    return f"{seconds // 60}m" if seconds >= 60 else f"{seconds}s"


def when(at: datetime | None, now: datetime) -> str:
    """`14:03:07 UTC (12m ago)` or `… (in 3h05)`; with the date when it is not today."""
    if at is None:
        return "—"
    seconds = int((now - at).total_seconds())
    relative = f"{_span(seconds)} ago" if seconds >= 0 else f"in {_span(-seconds)}"
    stamp = at.strftime("%H:%M:%S" if at.date() == now.date() else "%Y-%m-%d %H:%M")
    return f"{stamp} UTC ({relative})"


def _safe(value: object) -> str:
    return for_terminal("" if value is None else value)


def _facts(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, value in rows:
        table.add_row(label, Text(value))
    return table


def _heading(text: str) -> Text:
    return Text(f"\n{text}", style="bold underline")


class EscalationDetail(VerticalScroll):
    DEFAULT_CSS = """
    EscalationDetail { height: 1fr; padding: 0 1; }
    EscalationDetail > Static { height: auto; }
    """

    def compose(self):  # type: ignore[no-untyped-def]  # ComposeResult, kept light
        yield Static(Text("No escalation selected."), id="detail-body")

    _shown: tuple[Table | Text, ...] = (Text("No escalation selected."),)

    def show(self, detail: Detail | None, now: datetime) -> None:
        body = self.query_one("#detail-body", Static)
        self._shown = (
            (Text("No escalation selected."),)
            if detail is None
            else tuple(self._parts(detail, now))
        )
        body.update(Group(*self._shown))

    def plain_text(self, width: int = 120) -> str:
        console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
        with console.capture() as captured:
            console.print(Group(*self._shown))
        return captured.get()

    def _parts(self, detail: Detail, now: datetime) -> list[Table | Text]:
        e: EscalationSummary = detail.escalation
        kind = "skipped: cannot judge" if e.kind == "cannot_judge" else "flagged"
        parts: list[Table | Text] = [
            Text(f"{e.state.value.upper()} · {kind} · {e.escalation_id}", style="bold"),
            Text("Transcript", style="bold underline"),
            Text(_safe(e.transcript) or "(none)", style="italic" if not e.transcript else ""),
        ]
        facts = [
            ("flags", ", ".join(_safe(f) for f in e.flags) or "—"),
            ("intent", _safe(e.intent) or "—"),
            ("note", _safe(e.note) or "—"),
            ("raised by", _safe(e.annotator)),
            ("raised", when(e.created_at, now)),
            ("clip", f"{e.duration_s:.1f} s · {_safe(e.locale)}"),
            ("ack due", when(e.sla.ack_due_at, now) if e.state == "open" else "—"),
            ("resolve due", when(e.sla.resolve_due_at, now) if e.state != "resolved" else "—"),
        ]
        if e.acknowledged_by:
            facts.append(
                ("acknowledged", f"{_safe(e.acknowledged_by)}, {when(e.acknowledged_at, now)}")
            )
        if e.resolved_by:
            facts.append(("resolved", f"{_safe(e.resolved_by)}, {when(e.resolved_at, now)}"))
            facts.append(("outcome", _safe(e.outcome)))
            facts.append(("resolution", _safe(e.resolution_note)))
        parts.append(_facts(facts))
        if detail.amendments:
            parts.append(_heading(f"Amend history ({len(detail.amendments)} earlier versions)"))
            for a in detail.amendments:
                flags = ", ".join(_safe(f) for f in a.flags) or "no flags"
                line = f"until {when(a.amended_at, now)}: {_safe(a.intent)} · {flags}"
                parts.append(Text(line))
                parts.append(Text(f"  “{_safe(a.transcript)}”" + (
                    f" — note: {_safe(a.note)}" if a.note else "")))  # fmt: skip
        parts.append(_heading("Audit trail"))
        if not detail.audit:
            parts.append(Text("no events yet"))
        for ev in detail.audit:
            line = f"{when(ev.at, now)}  {ev.action.value:<8} {_safe(ev.actor)}  "
            line += f"{ev.from_state.value} → {ev.to_state.value}"
            if ev.outcome:
                line += f"  [{_safe(ev.outcome)}]"
            if ev.note:
                line += f"  “{_safe(ev.note)}”"
            parts.append(Text(line))
        return parts
