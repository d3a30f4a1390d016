"""The queue view (admins): queue status, leases per person, clips per hour over the shift, and
the exposure counts where the server has them.

Refreshed every `REFRESH_S` and by the refresh key. A supervisor's token gets 403 from the admin
routes: the view says so and shows nothing else. Exposure counts come from the welfare routes
when the server and client have them (`QueueClient.exposure`); without them the view says
they are not available rather than failing.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from annotator.actions import SUPERVISE
from annotator.keymap import app_bindings
from annotator.screens.help import HelpScreen
from api.models import QueueStatus, Throughput
from api.text_safety import for_terminal
from widgets.throughput_chart import ThroughputChart

if TYPE_CHECKING:
    from annotator.supervise.services import ConsoleServices

REFRESH_S = 15.0
#: The console's actions that mean something here; the escalation keys stay on their view.
_HERE = frozenset(
    {"console.view", "console.refresh", "app.help", "app.command-palette", "app.quit"}
)


def queue_table(status: QueueStatus) -> Table:
    table = Table(title=None, expand=False, box=None, padding=(0, 2))
    for column in ("locale", "pending", "leased", "done", "escalated"):
        table.add_column(column, justify="left" if column == "locale" else "right")
    for row in status.by_locale:
        table.add_row(
            for_terminal(row.locale), *(str(v) for v in (row.pending, row.leased, row.done,
                                                          row.escalated))
        )  # fmt: skip
    table.add_row(
        Text("all", style="bold"),
        *(Text(str(v), style="bold") for v in (status.pending, status.leased, status.done,
                                              status.escalated)),
    )  # fmt: skip
    return table


def leases_table(status: QueueStatus) -> Table:
    table = Table(box=None, padding=(0, 2))
    table.add_column("annotator")
    table.add_column("live leases", justify="right")
    for p in status.leases_per_person:
        table.add_row(for_terminal(p.annotator), str(p.live_leases))
    if not status.leases_per_person:
        table.add_row("nobody holds a lease", "")
    return table


def exposure_text(report: Any) -> Text:
    """Whatever the welfare route answers, as lines: each list item's fields, escaped."""
    data = report.model_dump() if hasattr(report, "model_dump") else report
    lines: list[str] = []
    items = next((v for v in data.values() if isinstance(v, list)), []) if isinstance(
        data, dict) else []  # fmt: skip
    for item in items:
        if isinstance(item, dict):
            lines.append(
                " · ".join(f"{for_terminal(k)}: {for_terminal(v)}" for k, v in item.items())
            )
    return Text("\n".join(lines) or "no exposure recorded this shift")


class QueueScreen(Screen[None]):
    DEFAULT_CSS = """
    QueueScreen #queue-status { height: 1; padding: 0 1; background: $boost; }
    QueueScreen VerticalScroll { padding: 0 1; }
    QueueScreen .heading { text-style: bold underline; margin-top: 1; height: auto; }
    QueueScreen Static { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__()
        self.services = services
        mine = [
            b
            for b in app_bindings(services.keymap.bindings, SUPERVISE)
            if b.id in _HERE or (b.id or "").startswith("player.")
        ]
        self._bindings = BindingsMap.merge(
            [self._bindings, BindingsMap([*mine, Binding("escape", "switch_view", show=False)])]
        )

    def compose(self) -> ComposeResult:
        yield Static("queue · loading…", id="queue-status", markup=False)
        with VerticalScroll():
            yield Static("Queue", classes="heading", markup=False)
            yield Static("", id="queue-table")
            yield Static("Clips per hour over the shift", classes="heading", markup=False)
            yield ThroughputChart(id="throughput")
            yield Static("Leases per person", classes="heading", markup=False)
            yield Static("", id="leases-table")
            yield Static("Exposure this shift (distress, self-harm, explicit, minor)",
                         classes="heading", markup=False)  # fmt: skip
            yield Static("", id="exposure", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(REFRESH_S, self.load)

    @work(thread=True, group="queue", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        from api.client import Forbidden

        hours = max(1, math.ceil(self.services.settings.shift_hours))
        try:
            with self.services.client_factory() as client:
                status = client.queue_status()
                throughput = client.throughput(hours=hours)
                exposure_of = getattr(client, "exposure", None)
                exposure = exposure_of() if callable(exposure_of) else None
        except Forbidden as e:
            self.app.call_from_thread(self._forbidden, for_terminal(e.error.message))
            return
        self.app.call_from_thread(self._show, status, throughput, exposure)

    def _forbidden(self, message: str) -> None:
        self.query_one("#queue-status", Static).update(
            f"queue · the queue view needs an admin's token ({message})"
        )

    def _show(self, status: QueueStatus, throughput: Throughput, exposure: object) -> None:
        at = status.at.strftime("%H:%M:%S")
        self.query_one("#queue-status", Static).update(
            f"queue at {at} UTC · {status.pending} pending · {status.leased} leased · "
            f"{status.done} done · {status.open_escalations} escalations not resolved"
        )
        self.query_one("#queue-table", Static).update(queue_table(status))
        self.query_one("#leases-table", Static).update(leases_table(status))
        self.query_one(ThroughputChart).show(
            [_hour(h) for h in throughput.hours],
            [(p.annotator, p.clips_per_hour, p.total) for p in throughput.people],
        )
        none = Text("not available: this server has no exposure counts")
        shown = exposure_text(exposure) if exposure is not None else none
        self.query_one("#exposure", Static).update(shown)

    def action_switch_view(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_show_help(self) -> None:
        self.app.push_screen(HelpScreen(self.services.keymap, SUPERVISE))

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_quit(self) -> None:
        self.app.exit(0)


def _hour(at: datetime) -> str:
    return at.strftime("%H:%M")
