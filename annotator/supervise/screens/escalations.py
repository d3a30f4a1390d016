"""The escalations view: the live list, the selected escalation's detail, its clip's player.

The list comes from `EscalationFeed` (a long-poll thread); each page replaces the list, and an
escalation not seen before rings the terminal bell and raises a notification. Selecting a row shows
what the list knows at once and fetches the full detail (annotation, amend history, audit trail).
The clip's audio is fetched only when a player key asks for it: every fetch is a `play` event in
the escalation's audit trail, so browsing the list never writes one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingsMap
from textual.containers import Container, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from annotator.actions import SUPERVISE
from annotator.keymap import app_bindings
from annotator.screens.help import HelpScreen
from annotator.screens.player_keys import PlayerKeys
from annotator.supervise.board import (
    RESOLVED_SHOWN,
    Board,
    countdown,
    severity_name,
    span,
)
from annotator.supervise.feed import EscalationFeed
from annotator.supervise.screens.resolve import ResolveScreen
from api.models import (
    EscalationDetail,
    EscalationPage,
    EscalationState,
    EscalationSummary,
)
from api.text_safety import for_terminal
from widgets.escalation_detail import EscalationDetail as DetailView
from widgets.escalation_list import EscalationList, EscalationRow
from widgets.player_bar import PlayerBar

if TYPE_CHECKING:
    from annotator.audio.decode import DecodedAudio
    from annotator.supervise.services import ConsoleServices

PLAYHEAD_HZ = 15
#: Keys the list binds itself (DataTable's), listed in the help beside the console's own.
LIST_KEYS = (
    ("Escalations", "up, down", "Select the previous / next escalation"),
    ("Escalations", "pageup, pagedown, home, end", "Move through the list by pages / to an end"),
)


class PageArrived(Message):
    def __init__(self, page: EscalationPage, at: float) -> None:
        super().__init__()
        self.page = page
        self.at = at


class FeedFailed(Message):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


@dataclass(frozen=True)
class Arrival:
    """When a new escalation reached this screen (monotonic), for the latency figure."""

    escalation_id: str
    created_at: float
    """Its `created_at` as a POSIX time (the server's clock)."""
    shown_at: float
    """time.time() when it was drawn."""


class EscalationsScreen(PlayerKeys, Screen[None]):
    DEFAULT_CSS = """
    EscalationsScreen { layout: vertical; }
    EscalationsScreen #status { height: 1; padding: 0 1; background: $boost; }
    EscalationsScreen #banner {
        height: auto; padding: 0 1; display: none;
        background: $warning 20%; color: $text-warning; text-style: bold;
    }
    EscalationsScreen #banner.-shown { display: block; }
    EscalationsScreen #body { layout: vertical; height: 1fr; }
    EscalationsScreen EscalationList { height: 2fr; min-height: 5; }
    EscalationsScreen #side { height: 3fr; }
    EscalationsScreen PlayerBar { height: 3; }
    EscalationsScreen EscalationDetail { height: 1fr; min-height: 6; border-top: solid $accent; }
    EscalationsScreen.-wide #body { layout: horizontal; }
    EscalationsScreen.-wide EscalationList { width: 1fr; height: 1fr; }
    EscalationsScreen.-wide #side { width: 1fr; height: 1fr; border-left: solid $accent; }
    EscalationsScreen.-wide EscalationDetail { border-top: none; }
    """
    #: From this width the list and the detail sit side by side.
    WIDE = 150

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__()
        self.services = services
        # The console's own keys first, so an 80-column footer shows them before the player's.
        bindings = sorted(
            app_bindings(services.keymap.bindings, SUPERVISE),
            key=lambda b: not (b.id or "").startswith(("escalation.", "console.")),
        )
        self._bindings = BindingsMap.merge([self._bindings, BindingsMap(bindings)])
        self.board = Board(clock=services.clock)
        self._details: dict[str, EscalationDetail] = {}
        self._audio_for: str | None = None
        self._offline = ""
        self.arrivals: list[Arrival] = []
        self.feed = EscalationFeed(
            services.client_factory,
            on_page=self._post_page,
            on_error=self._post_failure,
            wait_s=services.poll_wait_s,
        )

    def _post_page(self, page: EscalationPage) -> None:
        self.post_message(PageArrived(page, time.time()))  # thread-safe

    def _post_failure(self, error: BaseException) -> None:
        self.post_message(FeedFailed(error))

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="status", markup=False)
        yield Static("", id="banner", markup=False)
        with Container(id="body"):
            yield EscalationList(id="escalations")
            with Vertical(id="side"):
                yield PlayerBar(id="player")
                yield DetailView(id="detail")
        yield Footer()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= self.WIDE, "-wide")

    @property
    def player_bar(self) -> PlayerBar:
        return self.query_one(PlayerBar)

    @property
    def table(self) -> EscalationList:
        return self.query_one(EscalationList)

    @property
    def detail_view(self) -> DetailView:
        return self.query_one(DetailView)

    def on_mount(self) -> None:
        self.on_resize()
        self.player_bar.status = self.services.player_reason
        self._draw_status()
        self.feed.start()
        self.set_interval(1.0, self._tick)
        self.set_interval(1 / PLAYHEAD_HZ, self._tick_player)
        self.table.focus()

    def on_unmount(self) -> None:
        self.feed.close()

    # ------------------------------------------------------------------ drawing

    def _row(self, e: EscalationSummary) -> EscalationRow:
        now = self.board.now()
        due = countdown(e, now)
        return EscalationRow(
            key=e.escalation_id,
            severity=severity_name(e),
            age=span((now - e.created_at).total_seconds()),
            sla=due.text,
            state=e.state.value,
            who=for_terminal(e.annotator),
            flags=", ".join(for_terminal(f) for f in e.flags) or "—",
            overdue=e.overdue or due.overdue,
            urgent=e.severity <= 1,
        )

    def _draw_list(self) -> None:
        self.table.show([self._row(e) for e in self.board.rows()])
        self._draw_status()

    def _draw_status(self) -> None:
        counts = self.board.counts()
        keys = self.services.keymap.keys_for("escalation.filter")
        link = f"○ offline: {self._offline}" if self._offline else "● live"
        if self.board.page is None and not self._offline:
            link = "connecting…"
        role = self.services.role
        text = (
            (f"{role.value} · " if role is not None else "")
            + f"escalations · showing {self.board.filter.label}"
            + (f" ({keys[0]} changes)" if keys else "")
            + f" · {counts[EscalationState.OPEN]} open · "
            f"{counts[EscalationState.ACKNOWLEDGED]} acknowledged · {link}"
        )
        if self.board.page is not None and self.board.page.truncated:
            text += " · list truncated: resolve some"
        self.query_one("#status", Static).update(text)

    def _tick(self) -> None:
        if self.board.page is not None:
            self.table.tick([self._row(e) for e in self.board.rows()])
            # The pane's "(12m ago)" / "(in 3m)" count on with the list's.
            self._show_detail(self.table.selected)

    def _tick_player(self) -> None:
        player = self.services.player
        bar = self.player_bar
        if self._audio_for is not None and self._audio_for == self.table.selected:
            bar.position = player.position
        bar.playing = player.playing
        bar.speed = player.speed

    def _show_detail(self, key: str | None) -> None:
        if key is None or self.board.page is None:
            self.detail_view.show(None, self._now())
            return
        detail = self._details.get(key)
        summary = self.board.find(key)
        if detail is None and summary is not None:
            detail = EscalationDetail(escalation=summary)
        elif detail is not None and summary is not None and detail.escalation != summary:
            detail = detail.model_copy(update={"escalation": summary})
        self.detail_view.show(detail, self.board.now())

    def _now(self) -> datetime:
        return self.board.now() if self.board.page is not None else datetime.now(UTC)

    # ------------------------------------------------------------------ news from the feed

    @on(PageArrived)
    def _page_arrived(self, message: PageArrived) -> None:
        fresh = self.board.apply(message.page)
        if self._offline:
            self._offline = ""
            self._banner("")
        self._draw_list()
        for e in fresh:
            self.arrivals.append(Arrival(e.escalation_id, e.created_at.timestamp(), time.time()))
        if fresh:
            self.app.bell()
            for e in fresh[:3]:
                self.notify(
                    f"{severity_name(e)} · raised by {for_terminal(e.annotator)}"
                    + (f" · {', '.join(for_terminal(f) for f in e.flags)}" if e.flags else ""),
                    title="New escalation",
                    severity="warning" if e.severity <= 1 else "information",
                    timeout=15,
                    markup=False,
                )
            if len(fresh) > 3:
                self.notify(f"and {len(fresh) - 3} more", title="New escalations", timeout=15)
        if self.board.shows_resolved:
            self.fetch_resolved()
        selected = self.table.selected
        if selected is not None:
            self._show_detail(selected)
            self.fetch_detail(selected)

    @on(FeedFailed)
    def _feed_failed(self, message: FeedFailed) -> None:
        self.app.handle_error(message.error, what="escalation list")  # type: ignore[attr-defined]

    def report_offline(self, reason: str) -> None:
        self._offline = reason
        self._banner(f"The server is unreachable ({reason}): retrying. The list is as it was.")
        self._draw_status()

    def _banner(self, text: str) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.set_class(bool(text), "-shown")

    @on(EscalationList.Selected)
    def _selected(self, message: EscalationList.Selected) -> None:
        if self._audio_for is not None and self._audio_for != message.key:
            self.services.player.stop()
            self._audio_for = None
        summary = self.board.find(message.key) if message.key else None
        self.player_bar.load((), summary.duration_s if summary is not None else 0.0)
        self.player_bar.status = self.services.player_reason
        self._show_detail(message.key)
        if message.key is not None:
            self.fetch_detail(message.key)

    # ------------------------------------------------------------------ workers

    @work(thread=True, group="detail", exclusive=True, exit_on_error=False)
    def fetch_detail(self, key: str) -> None:
        with self.services.client_factory() as client:
            detail = client.escalation(key)
        self.app.call_from_thread(self._detail_arrived, detail)

    def _detail_arrived(self, detail: EscalationDetail) -> None:
        key = detail.escalation.escalation_id
        self._details[key] = detail
        if key == self.table.selected:
            self._show_detail(key)

    @work(thread=True, group="resolved", exclusive=True, exit_on_error=False)
    def fetch_resolved(self) -> None:
        with self.services.client_factory() as client:
            page = client.escalations(state=[EscalationState.RESOLVED], limit=RESOLVED_SHOWN)
        self.app.call_from_thread(self._resolved_arrived, page)

    def _resolved_arrived(self, page: EscalationPage) -> None:
        self.board.apply_resolved(page)
        self._draw_list()

    @work(thread=True, group="transition", exit_on_error=False)
    def transition(self, key: str, verb: str, outcome: str = "", note: str = "") -> None:
        from api.client import Conflict, RequestRejected

        try:
            with self.services.client_factory() as client:
                if verb == "ack":
                    detail = client.acknowledge(key)
                elif verb == "resolve":
                    detail = client.resolve(key, outcome, note)
                else:
                    detail = client.reopen(key)
        except (Conflict, RequestRejected) as e:
            if isinstance(e, Conflict) or e.status_code in {404, 410, 422}:
                text = for_terminal(e.error.message)
                self.app.call_from_thread(
                    self.notify, text, title=f"Could not {verb}", severity="warning", markup=False
                )
                return
            raise
        self.app.call_from_thread(self._detail_arrived, detail)

    @work(thread=True, group="audio", exclusive=True, exit_on_error=False)
    def fetch_audio(self, key: str, replay: bool) -> None:
        from annotator.audio.decode import AudioDecodeError, decode, envelope
        from api.client import Gone

        try:
            with self.services.client_factory(timeout=30.0) as client:
                data = client.escalation_audio(key)
        except Gone:
            self.app.call_from_thread(self._audio_status, key, "audio is gone: resolved")
            return
        try:
            audio = decode(data)
        except AudioDecodeError as e:
            self.app.call_from_thread(self._audio_status, key, f"broken audio: {e}")
            return
        peaks = envelope(audio, 400)
        self.app.call_from_thread(self._audio_ready, key, audio, peaks)

    def _audio_status(self, key: str, text: str) -> None:
        if key == self.table.selected:
            self.player_bar.status = for_terminal(text)

    def _audio_ready(self, key: str, audio: DecodedAudio, peaks: list[float]) -> None:
        if key != self.table.selected:
            return  # the supervisor moved on meanwhile
        player = self.services.player
        player.load(audio)
        self._audio_for = key
        self.player_bar.load(peaks, audio.duration_s)
        self.player_bar.status = self.services.player_reason
        player.play()
        self.fetch_detail(key)  # the fetch was a `play` audit event: show it in the trail

    # ------------------------------------------------------------------ actions: escalations

    def _selected_row(self) -> EscalationSummary | None:
        key = self.table.selected
        row = self.board.find(key) if key is not None else None
        if row is None:
            self.notify("No escalation selected.", severity="warning")
        return row

    def action_ack(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if row.state is not EscalationState.OPEN:
            self.notify(f"It is {row.state.value} already.", severity="warning")
            return
        self.transition(row.escalation_id, "ack")

    def action_resolve(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if row.state is EscalationState.RESOLVED:
            self.notify("It is resolved already (reopen it first).", severity="warning")
            return
        title = f"{severity_name(row)}, raised by {row.annotator}"

        def done(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self.transition(row.escalation_id, "resolve", *choice)

        self.app.push_screen(ResolveScreen(list(self.services.taxonomy.outcomes), title), done)

    def action_reopen(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if row.state is not EscalationState.RESOLVED:
            self.notify("Only a resolved escalation can be reopened.", severity="warning")
            return
        self.transition(row.escalation_id, "reopen")

    def action_cycle_filter(self) -> None:
        self.board.cycle_filter()
        if self.board.shows_resolved:
            self.fetch_resolved()
        self._draw_list()

    def action_refresh(self) -> None:
        self.refresh_now()

    @work(thread=True, group="refresh", exclusive=True, exit_on_error=False)
    def refresh_now(self) -> None:
        from annotator.supervise.board import ACTIVE

        with self.services.client_factory() as client:
            page = client.escalations(state=list(ACTIVE))
        self.post_message(PageArrived(page, time.time()))

    # ------------------------------------------------------------------ actions: player

    def _need_audio(self, replay: bool) -> bool:
        """Fetch the selected clip's audio first (a `play` audit event); True when fetching."""
        key = self.table.selected
        if key is None:
            self.notify("No escalation selected.", severity="warning")
            return True
        if self._audio_for == key:
            return False
        row = self.board.find(key)
        if row is not None and row.state is EscalationState.RESOLVED:
            self.player_bar.status = "audio is gone: resolved"
            return True
        self.player_bar.status = "fetching the clip…"
        self.fetch_audio(key, replay)
        return True

    def action_player_toggle(self) -> None:
        if not self._need_audio(replay=False):
            super().action_player_toggle()

    def action_player_replay(self) -> None:
        if not self._need_audio(replay=True):
            super().action_player_replay()

    # ------------------------------------------------------------------ actions: app

    def action_show_help(self) -> None:
        self.app.push_screen(HelpScreen(self.services.keymap, SUPERVISE, LIST_KEYS))

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_relay_pair(self) -> None:
        from annotator.screens.relay_pair import pair_relay_again

        pair_relay_again(self.app, self.services.player)

    def action_switch_view(self) -> None:
        from annotator.supervise.screens.queue import QueueScreen

        self.app.push_screen(QueueScreen(self.services))

    def action_people(self) -> None:
        from annotator.supervise.screens.people import PeopleScreen

        self.app.push_screen(PeopleScreen(self.services))

    def action_revoke(self) -> None:
        self.notify("Tokens are revoked in the people view: open it first.", severity="warning")

    def action_quality(self) -> None:
        from annotator.supervise.screens.quality import QualityScreen

        self.app.push_screen(QualityScreen(self.services))

    def action_quit(self) -> None:
        self.app.exit(0)
