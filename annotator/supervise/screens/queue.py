"""The queue view (admins): queue status, leases per person, clips per hour over the shift, and
the exposure counts where the server has them.

Refreshed every `REFRESH_S` and by the refresh key. A supervisor's token gets 403 from the admin
routes: the view says so, and still shows the exposure counts (a supervisor's to see). Those come
from the welfare routes when the server and client have them (`QueueClient.exposure`); without
them the view says they are not available rather than failing.
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
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from annotator.actions import SUPERVISE
from annotator.keymap import app_bindings
from annotator.screens.help import HelpScreen
from api.models import QueueStatus, Role, Throughput
from api.text_safety import for_terminal
from widgets.throughput_chart import ThroughputChart

if TYPE_CHECKING:
    from annotator.supervise.services import ConsoleServices

REFRESH_S = 15.0
#: The console's actions that mean something here; the escalation keys stay on their view.
_HERE = frozenset(
    {
        "console.view",
        "console.people",
        "console.refresh",
        "app.help",
        "app.command-palette",
        "app.quit",
    }
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


def exposure_table(report: Any) -> Table | Text:
    """The welfare route's `ExposureReport` (since, categories, people: person, counts per
    category, breaks, on_break, opt_outs), read by attribute: the model lives with the welfare
    routes, which this console does not import."""
    people = list(getattr(report, "people", []))
    if not people:
        return Text("no exposure recorded this shift")
    categories = [str(c) for c in getattr(report, "categories", [])]
    table = Table(box=None, padding=(0, 2))
    table.add_column("person")
    for category in categories:
        table.add_column(for_terminal(category.replace("_", " ")), justify="right")
    table.add_column("breaks", justify="right")
    table.add_column("now")
    table.add_column("shift since")
    table.add_column("opted out of")
    for p in people:
        counts = dict(getattr(p, "counts", {}))
        table.add_row(
            for_terminal(getattr(p, "person", "?")),
            *(str(counts.get(c, 0)) for c in categories),
            str(getattr(p, "breaks", 0)),
            _now(p),
            _shift(getattr(p, "shift_started_at", None)),
            ", ".join(for_terminal(o) for o in getattr(p, "opt_outs", [])),
        )
    return table


def _now(person: Any) -> str:
    if getattr(person, "on_break", False):
        return "on a break"
    return "on shift" if getattr(person, "on_shift", False) else ""


def _shift(started: datetime | None) -> str:
    """When the person's shift began (the server's: their first work after a long pause)."""
    return "-" if not isinstance(started, datetime) else started.strftime("%d %b %H:%M UTC")


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
            with Vertical(id="admin-part"):
                yield Static("Queue", classes="heading", markup=False)
                yield Static("", id="queue-table")
                yield Static("Clips per hour over the shift", classes="heading", markup=False)
                yield ThroughputChart(id="throughput")
                yield Static("Leases per person", classes="heading", markup=False)
                yield Static("", id="leases-table")
            yield Static("Exposure this shift (distress, self-harm, explicit, minor)",
                         classes="heading", markup=False)  # fmt: skip
            yield Static(
                "not available: this server has no exposure counts", id="exposure", markup=False
            )
        yield Footer()

    @property
    def admin(self) -> bool:
        return self.services.role is not Role.SUPERVISOR

    def on_mount(self) -> None:
        # A supervisor's view: the exposure counts only (the queue's figures are admins').
        self.query_one("#admin-part").display = self.admin
        if not self.admin:
            self.query_one("#queue-status", Static).update(
                "exposure · the queue's figures are for admins"
            )
        self.load()
        self.set_interval(REFRESH_S, self.load)

    @work(thread=True, group="queue", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        """The admin figures and the exposure counts, each on its own: a supervisor's token is
        refused the first (admins only) and still sees the second."""
        from api.client import Forbidden

        hours = max(1, math.ceil(self.services.settings.shift_hours))
        with self.services.client_factory() as client:
            try:
                if self.admin:
                    status, throughput = client.queue_status(), client.throughput(hours=hours)
                    self.app.call_from_thread(self._show, status, throughput)
            except Forbidden as e:
                self.app.call_from_thread(self._forbidden, for_terminal(e.error.message))
            exposure_of = getattr(client, "exposure", None)
            if not callable(exposure_of):
                return
            try:
                report = exposure_of()
            except Forbidden as e:
                report = Text(f"not for this token: {for_terminal(e.error.message)}")
            self.app.call_from_thread(self._show_exposure, report)

    def _forbidden(self, message: str) -> None:
        self.query_one("#queue-status", Static).update(
            f"queue · the queue figures need an admin's token ({message})"
        )

    def _show(self, status: QueueStatus, throughput: Throughput) -> None:
        at = status.at.strftime("%H:%M:%S")
        self.query_one("#queue-status", Static).update(
            f"queue at {at} UTC · {status.pending} pending · {status.leased} leased · "
            f"{status.done} done · {status.open_escalations} escalations not resolved"
        )
        self.query_one("#queue-table", Static).update(queue_table(status))
        self.query_one("#leases-table", Static).update(leases_table(status))
        self.query_one(ThroughputChart).show_people(
            [_hour(h) for h in throughput.hours],
            [(p.annotator, p.clips_per_hour, p.total) for p in throughput.people],
        )

    def _show_exposure(self, report: object) -> None:
        shown = report if isinstance(report, Text) else exposure_table(report)
        self.query_one("#exposure", Static).update(shown)

    def action_switch_view(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_people(self) -> None:
        from annotator.supervise.screens.people import PeopleScreen

        self.app.switch_screen(PeopleScreen(self.services))

    def action_show_help(self) -> None:
        self.app.push_screen(HelpScreen(self.services.keymap, SUPERVISE))

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_quit(self) -> None:
        self.app.exit(0)


def _hour(at: datetime) -> str:
    return at.strftime("%H:%M")
