"""The quality view (issue 12): `GET /v1/quality/report` in the console, for supervisors and
admins (the route's roles; any other token is told so). Over the shift: Sparklines of throughput
(annotations an hour) and gold accuracy (gold intent right, per hour); then per person clips,
clips/hour, median seconds a clip, gold accuracy, agreement with others; per locale and intent the
volume and how often clips with two or more annotations disagree.

Refreshed every `REFRESH_S` and by the refresh key; the console's view key for it toggles back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

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
from api.quality_models import QualityHour, QualityReport, QualityVolume
from api.text_safety import for_terminal
from widgets.shift_sparklines import ShiftSparklines

if TYPE_CHECKING:
    from annotator.supervise.services import ConsoleServices

REFRESH_S = 30.0
_HERE = frozenset(
    {"console.quality", "console.refresh", "app.help", "app.command-palette", "app.quit"}
)


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _hour(start: float) -> str:
    return datetime.fromtimestamp(start, UTC).strftime("%H:%M")


def people_table(report: QualityReport) -> Table | Text:
    if not report.people:
        return Text("nobody has annotated yet")
    table = Table(box=None, padding=(0, 1))
    # Short headings: the table reads at 80 columns (gold acc = gold intent accuracy; agree =
    # intents matched with others on shared clips; pair WER = mean WER against theirs).
    for column in ("person", "clips", "clips/h", "med s", "gold", "gold acc", "gold WER",
                   "agree", "pair WER"):  # fmt: skip
        table.add_column(column, justify="left" if column == "person" else "right")
    for p in report.people:
        table.add_row(
            for_terminal(p.annotator),
            str(p.clips),
            _num(p.clips_per_hour),
            _num(p.median_seconds),
            str(p.gold.clips),
            _pct(p.gold.intent_accuracy),
            _num(p.gold.wer, 2),
            _pct(p.intent_agreement),
            _num(p.wer_with_others, 2),
        )
    return table


def volume_table(rows: list[QualityVolume], what: str) -> Table | Text:
    if not rows:
        return Text(f"no {what}s yet")
    table = Table(box=None, padding=(0, 1))
    for column in (what, "annotations", "clips", "clips K≥2", "disagreement"):
        table.add_column(column, justify="left" if column == what else "right")
    for v in rows:
        table.add_row(
            for_terminal(v.key),
            str(v.annotations),
            str(v.clips),
            str(v.multi_clips),
            _pct(v.disagreement),
        )
    return table


def shift_rows(series: list[QualityHour]) -> tuple[str, list[tuple[str, list[float], str]]]:
    """The charts' axis line and rows: throughput, and gold accuracy (0 in an hour without gold,
    which the summary says)."""
    if not series:
        return "no hours reported", []
    axis = f"{_hour(series[0].start)} → {_hour(series[-1].start)} UTC, one bar an hour"
    done = [float(h.annotations) for h in series]
    gold = sum(h.gold for h in series)
    right = sum(h.gold_correct for h in series)
    accuracy = [100.0 * (h.gold_accuracy or 0.0) for h in series]
    last = next((h for h in reversed(series) if h.gold), None)
    return axis, [
        ("clips an hour", done, f"{int(done[-1])} this hour · {int(sum(done))} in all"),
        (
            "gold accuracy",
            accuracy,
            f"{_pct(last.gold_accuracy)} last · {_pct(right / gold)} of {gold}"
            if last is not None and gold
            else "no gold clips in these hours",
        ),
    ]


class QualityScreen(Screen[None]):
    DEFAULT_CSS = """
    QualityScreen #quality-status { height: 1; padding: 0 1; background: $boost; }
    QualityScreen VerticalScroll { padding: 0 1; }
    QualityScreen .heading { text-style: bold underline; margin-top: 1; height: auto; }
    QualityScreen Static { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__()
        self.services = services
        mine = [b for b in app_bindings(services.keymap.bindings, SUPERVISE) if b.id in _HERE]
        self._bindings = BindingsMap.merge(
            [self._bindings, BindingsMap([*mine, Binding("escape", "quality", show=False)])]
        )
        self.report: QualityReport | None = None

    def compose(self) -> ComposeResult:
        yield Static("quality · loading…", id="quality-status", markup=False)
        with VerticalScroll():
            yield Static("Over the shift", classes="heading", markup=False)
            yield ShiftSparklines(id="shift")
            yield Static("People", classes="heading", markup=False)
            yield Static("", id="people")
            yield Static("Locales", classes="heading", markup=False)
            yield Static("", id="locales")
            yield Static("Intents", classes="heading", markup=False)
            yield Static("", id="intents")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(REFRESH_S, self.load)

    @work(thread=True, group="quality", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        from api.client import Forbidden

        with self.services.client_factory() as client:
            try:
                report = client.quality_report()
            except Forbidden as e:
                self.app.call_from_thread(self._forbidden, for_terminal(e.error.message))
                return
        self.app.call_from_thread(self._show, report)

    def _forbidden(self, message: str) -> None:
        self.query_one("#quality-status", Static).update(
            f"quality · the report is for supervisors and admins ({message})"
        )

    def _show(self, report: QualityReport) -> None:
        self.report = report
        o = report.overall
        self.query_one("#quality-status", Static).update(
            f"{sum(p.clips for p in report.people)} annotations · "
            f"{len(report.people)} people · {o.clips} clips K≥2 · intent α "
            f"{_num(o.intent_alpha.value, 2)} · pair WER {_num(o.mean_pair_wer, 2)}"
        )
        self.query_one(ShiftSparklines).show(*shift_rows(report.series))
        self.query_one("#people", Static).update(people_table(report))
        self.query_one("#locales", Static).update(volume_table(report.locales, "locale"))
        self.query_one("#intents", Static).update(volume_table(report.intents, "intent"))

    def action_quality(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_show_help(self) -> None:
        self.app.push_screen(HelpScreen(self.services.keymap, SUPERVISE))

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_quit(self) -> None:
        self.app.exit(0)
