"""The annotate screen: key mapping and drawing over the workbench.

Every verb (submit, skip, undo/amend, go offline, quit) belongs to `annotator.workbench.Workbench`,
which returns outcome values; this screen turns keys into verbs and outcomes into pixels. The hot
path — submit key to the next clip playing — is local only: one SQLite transaction in the store,
a deque pop, `player.load/play`; waking the sync thread waits until the next clip plays.
News from the threads arrives as typed messages (`screens/messages.py`). The help, skip and
wellbeing screens are imported when first opened: none is needed before the first clip plays, and
the cold start is budgeted (tests/test_import_cost.py).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from time import monotonic as _monotonic
from time import sleep as _sleep
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingsMap
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Footer, Input, ProgressBar, Static

from annotator.audio.gain import describe as describe_gain
from annotator.keymap import app_bindings
from annotator.prefetch import PrefetchState
from annotator.screens.annotate_extras import AnnotateExtras
from annotator.screens.messages import (
    CheckoutProgress,
    ConnectivityChanged,
    QueueChanged,
    SyncProgress,
)
from annotator.screens.player_keys import PlayerKeys
from annotator.session import PACE_WINDOW_S, ClipClock, Session
from annotator.typeahead import KeyHold
from annotator.workbench.connectivity import ConnectivityState, Link
from annotator.workbench.outcomes import (
    Amended,
    Form,
    Invalid,
    Refused,
    Reopened,
    Shown,
    Submitted,
    Waiting,
)
from annotator.workbench.tidy import tidy_transcript
from api.models import Lease, ReleaseReason, Stats
from api.taxonomy import TaxonomyIndex
from api.text_safety import for_terminal
from widgets import (
    ClipHeader,
    FlagPanel,
    IntentPicker,
    PlayerBar,
    StatsBar,
    TranscriptEditor,
    TranscriptField,
)

if TYPE_CHECKING:
    from annotator.prefetch import ReadyClip
    from annotator.screens.skip import SkipChoice
    from annotator.services import Services
    from annotator.sync import SyncEvent
    from annotator.workbench import Workbench
    from annotator.workbench.checkout import CheckoutResult
    from api.welfare import WelfareState

#: The playhead's refresh rate: smooth to the eye, a rounding error of CPU.
PLAYHEAD_HZ = 15
#: Clips the "go offline" action checks out (about an hour of work at the target pace).
GO_OFFLINE_CLIPS = 100
#: After asking for the next clip's sound, the event loop stands aside this long at most (asleep,
#: so the device threads get the interpreter) until the device has its first buffer; the redraw
#: that follows a clip change would otherwise hold them off for several milliseconds.
AUDIO_START_WAIT_S = 0.004
#: Header numbers remembered for undo (the amend window reaches back minutes, not hours).
SHOWN_AT_KEEP = 200


class AnnotateScreen(PlayerKeys, AnnotateExtras):
    DEFAULT_CSS = """
    AnnotateScreen { layout: vertical; }
    AnnotateScreen #banner {
        height: auto; padding: 0 1; display: none;
        background: $warning 20%; color: $text-warning; text-style: bold;
    }
    AnnotateScreen #banner.-shown { display: block; }
    AnnotateScreen #banner.-error { background: $error 25%; color: $text-error; }
    AnnotateScreen #checkout { height: 1; padding: 0 1; }
    /* One utterance: 6 lines of text at most, the rest of a tall terminal goes to the intents. */
    AnnotateScreen TranscriptField { height: 2fr; min-height: 4; max-height: 9; }
    AnnotateScreen #form-error {
        height: auto; padding: 0 1; display: none; color: $text-error; text-style: bold;
    }
    AnnotateScreen #form-error.-shown { display: block; }
    AnnotateScreen #lower { height: 3fr; min-height: 9; }
    AnnotateScreen #intent { height: 1fr; }
    /* No scrollbar: its thumb alone floated between the intents and the flags like a stray
       glyph; the filter and ↑/↓ move through the list, the highlight shows where. */
    AnnotateScreen #intent > OptionList { height: 1fr; min-height: 3; scrollbar-size-vertical: 0; }
    AnnotateScreen .-invalid { border-left: thick $error; }
    """

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.bench: Workbench = services.workbench
        # The keys come from the resolved keymap, so they are set per instance, not per class.
        self._bindings = BindingsMap.merge(
            [self._bindings, BindingsMap(app_bindings(services.keymap.bindings))]
        )
        if self.bench.index is None:
            self.bench.index = TaxonomyIndex(services.taxonomy)
        self.index = self.bench.index
        self._hold_advance = False  # wellbeing notice open: do not auto-advance
        self._draft_dirty = False
        self._link = ConnectivityState(Link.ONLINE)
        self._damaged: list[str] = []
        self._playhead_timer: Timer | None = None
        self._relay_down_polls = 0  # consecutive polls that found the audio relay disconnected
        self._waiting_text = ""
        self._shown_at: dict[str, int] = {}  # lease id → the number its header showed
        # Keys typed while no clip is here wait for the next one (annotator/typeahead.py); the
        # app's own keys (quit, help, the player's) act at once.
        passing = {"ctrl+q", "ctrl+c"}
        for binding_id in services.keymap.bindings:
            if binding_id.startswith(("app.", "player.")):
                passing.update(services.keymap.keys_for(binding_id))
        self.key_hold = KeyHold(lambda key: key.key in passing)

    @property
    def current(self) -> ReadyClip | None:
        return self.bench.current

    @property
    def clock(self) -> ClipClock | None:
        return self.bench.clip_clock

    @property
    def session(self) -> Session:
        return self.bench.session

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield ClipHeader(id="header")
        yield PlayerBar(id="player")
        yield Static("", id="banner", markup=False)
        yield TranscriptField(lint=self.index.lint_transcript, id="transcript")
        yield Static("", id="form-error", markup=False)
        with Horizontal(id="lower"):
            yield IntentPicker(self.services.taxonomy.intents, id="intent")
            yield FlagPanel(self.services.taxonomy.flags, id="flags")
        yield StatsBar(id="stats")
        yield Footer()

    @property
    def header(self) -> ClipHeader:
        return self.query_one(ClipHeader)

    @property
    def player_bar(self) -> PlayerBar:
        return self.query_one(PlayerBar)

    @property
    def transcript(self) -> TranscriptField:
        return self.query_one(TranscriptField)

    @property
    def intent(self) -> IntentPicker:
        return self.query_one(IntentPicker)

    @property
    def flag_panel(self) -> FlagPanel:
        return self.query_one(FlagPanel)

    @property
    def stats(self) -> StatsBar:
        return self.query_one(StatsBar)

    def on_mount(self) -> None:
        s = self.services
        self.flag_panel.set_key_hints(
            {
                flag.id: keys[0]
                for flag in s.taxonomy.flags
                if (keys := s.keymap.keys_for(f"flag.{flag.id.replace('_', '-')}"))
            }
        )
        self.intent.set_frequent(self.bench.frequent_intents())
        self.transcript.editor.border_title = "transcript"
        stats = self.stats
        stats.target = s.settings.daily_target
        stats.shift_hours = s.settings.shift_hours
        stats.backend = s.player.name
        stats.backend_reason = s.player_reason
        # The whole shift long, not a toast: recordings may be crossing the network in clear.
        stats.insecure = bool(s.settings.insecure)
        stats.conflicts = self.bench.conflicts
        self.show_banner(self._resting_banner())
        # Threads call these from outside the event loop; post_message is thread-safe.
        s.prefetch_events.target = self._post_queue_changed
        s.sync_events.target = self._post_sync_progress
        s.link_events.target = self._post_link_changed
        # What happened before these were listening (the first lease, the first failure).
        self.post_message(ConnectivityChanged(self.bench.connectivity.state))
        self.post_message(QueueChanged(s.prefetcher.status))
        self._say_rejected(self.bench.rejected)
        self._update_stats()  # no pace before there is one
        self._say_pedal()
        self._playhead_timer = self.set_interval(1 / PLAYHEAD_HZ, self._tick)
        self.set_interval(min(1.0, s.settings.draft_debounce_s), self._flush_draft)
        self.set_interval(30.0, self.refresh_stats)
        self.set_interval(0.5, self._poll_player_link)
        self.refresh_stats()
        self.advance()

    def _post_queue_changed(self, *_: object) -> None:
        self.post_message(QueueChanged(self.services.prefetcher.status))

    def _post_sync_progress(self, event: SyncEvent) -> None:
        self.post_message(SyncProgress(event))

    def _post_link_changed(self, state: ConnectivityState) -> None:
        self.post_message(ConnectivityChanged(state))

    def _post_checkout_progress(self, done: int, total: int) -> None:
        self.post_message(CheckoutProgress(done, total))

    # ------------------------------------------------------------------ banners

    def _resting_banner(self) -> str:
        """The banner when the network is fine: damaged offline copies, muted audio, or nothing."""
        s = self.services
        if self._damaged:
            return self._damaged_text()
        if s.player.name == "none":
            if "annotator doctor" in s.player_reason:  # the reason already says where to look
                return s.player_reason
            return f"{s.player_reason} — run `annotator doctor` to check audio"
        if self._relay_down_polls >= 2:  # not for the moment the link takes to come up
            text = str(getattr(s.player, "status", "")) or "audio relay disconnected: muted"
            keys = s.keymap.keys_for("app.relay-pair")
            if getattr(s.player, "needs_secret", False) and keys:
                text += f" — press {keys[0]} to enter it"
            return text
        return ""

    def _damaged_text(self) -> str:
        return " · ".join(self._damaged) + " — showing the next clip" if self._damaged else ""

    def _poll_player_link(self) -> None:
        """A network player (the SSH relay) that lost its link: say so while it reconnects."""
        connected = bool(getattr(self.services.player, "connected", True))
        before = self._relay_down_polls >= 2
        self._relay_down_polls = 0 if connected else self._relay_down_polls + 1
        now = self._relay_down_polls >= 2
        if now or before:
            # The status bar says why for as long as it lasts: `relay: muted (why)`.
            why = str(getattr(self.services.player, "muted_reason", "")) or "disconnected"
            self.stats.backend = "relay: muted" if now else self.services.player.name
            self.stats.backend_reason = why if now else self.services.player_reason
        if (now or before) and self._link.online:
            self.show_banner(self._resting_banner())

    def show_banner(self, text: str, *, error: bool = False) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(for_terminal(text))  # quotes servers and exceptions
        banner.set_class(bool(text), "-shown")
        banner.set_class(error, "-error")

    def set_offline(self, offline: bool, reason: str = "") -> None:
        """Draw the connectivity state (the owner is `bench.connectivity`; this only draws)."""
        link = Link.OFFLINE if offline else Link.ONLINE
        self._draw_link(ConnectivityState(link, reason))

    def report_offline(self, reason: str) -> None:
        """A worker's request found no server: tell the connectivity owner, which checks."""
        self.bench.connectivity.reported_failure("worker", reason)

    @on(ConnectivityChanged)
    def _link_changed(self, message: ConnectivityChanged) -> None:
        was_online = self._link.online
        self._draw_link(message.state)
        if message.state.online and not was_online:
            self.refresh_stats()

    def _draw_link(self, state: ConnectivityState) -> None:
        self._link = state
        self.stats.link = state.link.value
        reason = state.reason or "the server cannot be reached"
        damaged = f"\n{self._damaged_text()}" if self._damaged else ""
        if state.link is Link.OFFLINE:
            self.show_banner(
                f"offline — {reason}. Keep working: submissions are saved and sent when the "
                f"server answers.{damaged}"
            )
        elif state.link is Link.RECONNECTING:
            self.show_banner(f"reconnecting — {reason}{damaged}")
        else:
            self.show_banner(self._resting_banner())

    # ------------------------------------------------------------------ clips

    def advance(self) -> None:
        """Show the next clip: instant when one is prefetched, else wait for the prefetch thread."""
        if self._hold_advance:
            return
        self._draw(self.bench.next())

    def _draw(self, outcome: Shown | Waiting | None) -> None:
        if isinstance(outcome, Shown):
            self.show_clip(outcome)
        elif isinstance(outcome, Waiting):
            self._show_waiting(outcome.message)

    def _show_waiting(self, message: str) -> None:
        self.services.player.stop()
        self.header.clear()
        bar = self.player_bar
        bar.load((), 0.0)
        bar.status = message
        self._waiting_text = message
        self._reset_form("")
        self._end_review()
        self.key_hold.hold()

    def _waiting_status(self, message: str) -> str:
        n = len(self.key_hold)
        if not n:
            return message
        held = f"{n} key{'s' * (n != 1)} typed wait for it"
        if self.key_hold.refused:
            held += f" ({self.key_hold.refused} refused: too many)"
        return f"{message} — {held}"

    def show_clip(self, shown: Shown) -> None:
        s = self.services
        clip = shown.clip
        # Sound first: the time from the submit key to the next clip's first frame at the device
        # is the figure that matters, and nothing below is needed for it.
        draft = shown.draft
        if clip.audio is not None:
            s.player.load(clip.audio)
            # A clip already flagged for escalation (a draft reopened after a crash) is not
            # played at anyone again unasked: welfare rule, issue 11.
            if draft is None or not self.index.escalation_flags.intersection(draft.flags):
                s.player.play()
                self._let_audio_start()
        else:
            s.player.stop()
        lease = clip.lease
        self._show_header(lease)
        bar = self.player_bar
        duration = clip.audio.duration_s if clip.audio is not None else lease.clip.duration_s
        bar.load(clip.envelope, duration)
        if draft is not None:
            self._fill_form(
                draft.transcript, draft.intent, draft.flags, draft.note, cursor=draft.cursor
            )
        else:
            # A draft the server sent: shown (and edited) with any control drawn visibly.
            self._reset_form(for_terminal(lease.clip.asr_hint or ""))
        self._begin_review(clip)
        if clip.audio is None:
            bar.status = f"broken audio: {clip.error}"
            self.notify(
                f"{clip.error}\nFlag it unintelligible and submit, or skip it as broken audio.",
                title="This clip cannot be played",
                severity="warning",
                timeout=8,
            )
        self.focus_transcript()
        self.key_hold.release()  # keys typed while waiting act on this clip now, in order
        # Crash bookkeeping (reopen on this clip after kill -9) right after the first frame.
        self.call_later(self._remember_current, lease)

    def _let_audio_start(self) -> None:
        """Sleep (the GIL free) until the device has the first buffer, AUDIO_START_WAIT_S at most.

        The device thread and the audio library's callback each need the interpreter to start a
        clip; right after `play()` the event loop would spend it on the clip change's redraw."""
        player = self.services.player
        deadline = _monotonic() + AUDIO_START_WAIT_S
        while player.first_frame_at is None and _monotonic() < deadline:
            _sleep(0.0001)

    def _remember_current(self, lease: Lease) -> None:
        self.bench.remember_shown(lease.lease_id)
        self.stats.prefetched = self.bench.ready

    def _show_header(
        self, lease: Lease, *, amending: bool = False, position: int | None = None
    ) -> None:
        late = lease.expires_at <= datetime.now(UTC)
        if position is None:
            position = self.session.shown
            # Undo names the clip it reopens by the number it had (not the next one's).
            self._shown_at[lease.lease_id] = position
            while len(self._shown_at) > SHOWN_AT_KEEP:
                del self._shown_at[next(iter(self._shown_at))]
        self.header.show_clip(
            position,
            lease.clip.clip_id,
            lease.clip.duration_s,
            lease.clip.locale,
            late=late,
            amending=amending,
        )

    def _reset_form(self, transcript: str) -> None:
        self._fill_form(transcript, None, (), None, cursor=None)

    def _fill_form(
        self,
        transcript: str,
        intent: str | None,
        flags: tuple[str, ...] | list[str],
        note: str | None,
        *,
        cursor: tuple[int, int] | None,
    ) -> None:
        self.transcript.load(transcript, cursor)
        self.intent.reset()
        if intent is not None and intent in self.index.intent_ids:
            self.intent.value = intent
        panel = self.flag_panel
        panel.reset()
        panel.flags = frozenset(f for f in flags if f in self.index.flag_ids)
        if note:
            panel.note = note
        self._clear_errors()
        self._draft_dirty = False

    # ------------------------------------------------------------------ news from the threads

    @on(QueueChanged)
    def _queue_changed(self, message: QueueChanged) -> None:
        news = self.bench.queue_news()
        status = news.status
        self.stats.prefetched = status.ready
        if status.state is PrefetchState.FAILED:
            self.show_banner(status.message, error=True)
        if status.state is PrefetchState.ON_BREAK:
            self._take_break(status.break_until, status.message)
        if news.damaged:
            self._damaged = list(news.damaged)
            self._draw_link(self._link)
            for text in news.damaged:
                self.notify(text, title="Offline copy removed", severity="warning", timeout=8)
        if news.current_lost and self.current is not None:
            # The server may still take it as late; say so rather than throw the work away.
            self._show_header(self.current.lease)
        if self.current is None and self.bench.amending is None:
            self.advance()
            if self.current is None:
                self._waiting_text = self.bench.waiting_message
                self.player_bar.status = self._waiting_status(self._waiting_text)

    def _take_break(self, until: float, reason: str) -> None:
        from annotator.screens.break_screen import BreakScreen

        shown = next((s for s in self.app.screen_stack if isinstance(s, BreakScreen)), None)
        if shown is not None:
            shown.extend(until, reason)
            return
        self.services.player.pause()
        factory = self.services.client_factory

        def check() -> WelfareState:
            assert factory is not None
            with factory() as client:
                return client.welfare()

        screen = BreakScreen(until, reason, check if factory is not None else None)
        self.app.push_screen(screen, self._after_break)

    def _after_break(self, _result: None) -> None:
        self.services.prefetcher.end_break()
        if self.current is None:
            self.advance()

    @on(SyncProgress)
    def _sync_progress(self, message: SyncProgress) -> None:
        event: SyncEvent = message.event
        self.stats.outbox = event.pending
        self.stats.conflicts = event.conflicts_total
        self._say_rejected(event.rejected)
        screen = self.app.screen
        wellbeing = sys.modules.get("annotator.screens.wellbeing")  # imported once one is open
        if wellbeing is not None and isinstance(screen, wellbeing.WellbeingScreen):
            screen.update_escalation(self.bench.escalation(screen.escalation_clip))
        if event.sent:
            self.refresh_stats()

    def _say_rejected(self, n: int) -> None:
        if n:
            self.notify(
                f"{n} submission{'s' * (n != 1)} rejected and kept: "
                "`annotator sync --status` lists why.",
                title="Rejected",
                severity="error",
                timeout=10,
            )

    @work(thread=True, exclusive=True, group="stats", exit_on_error=False)
    def refresh_stats(self) -> None:
        factory = self.services.client_factory
        if factory is None:
            return
        with factory() as client:
            stats = client.my_stats()
        self.app.call_from_thread(self._apply_stats, stats)

    def _apply_stats(self, stats: Stats) -> None:
        self.session.server_stats(stats.today, stats.clips_per_hour, stats.median_seconds)
        self._update_stats()

    def _update_stats(self) -> None:
        pace = self.session.pace()
        bar = self.stats
        bar.session_count = pace.session
        bar.today_count = pace.today
        bar.rate_known = pace.clips_per_hour is not None
        bar.clips_per_hour = pace.clips_per_hour or 0.0
        bar.rate_window = f"{PACE_WINDOW_S / 60:.0f} min"
        bar.median_seconds = pace.median_seconds
        bar.outbox = self.bench.outbox
        bar.prefetched = self.bench.ready

    # ------------------------------------------------------------------ playhead & drafts

    def _tick(self) -> None:
        player = self.services.player
        bar = self.player_bar
        bar.position = player.position
        bar.playing = player.playing
        bar.speed = player.speed
        bar.gain = describe_gain(player.applied_gain_db, capped=player.gain_capped)
        if self.key_hold.holding:
            bar.status = self._waiting_status(self._waiting_text)
        self._review_tick(bar.position)

    @on(TranscriptEditor.Edited)
    @on(IntentPicker.Picked)
    @on(FlagPanel.Changed)
    def _form_changed(self, event: Message) -> None:
        self._draft_dirty = True
        self.bench.activity()
        if isinstance(event, IntentPicker.Picked | FlagPanel.Changed):
            self._clear_errors()
        elif self.query_one("#form-error", Static).has_class("-shown"):
            self._recheck_problems()

    def _form(self) -> Form:
        row, col = self.transcript.editor.cursor_location
        return Form(
            transcript=self.transcript.text,
            intent=self.intent.value,
            flags=tuple(sorted(self.flag_panel.flags)),
            note=self.flag_panel.note or None,
            cursor=(row, col),
        )

    def _flush_draft(self) -> None:
        """Debounced draft save (at most one commit per interval, only when something changed)."""
        if not self._draft_dirty or self.current is None or self.bench.amending is not None:
            return
        self._draft_dirty = False
        self.bench.save_draft(self._form())

    def flush(self) -> None:
        self._flush_draft()

    # ------------------------------------------------------------------ validation

    def _clear_errors(self) -> None:
        error = self.query_one("#form-error", Static)
        if error.has_class("-shown"):  # an update means a layout pass: skip it when none shows
            error.update("")
            error.remove_class("-shown")
        for widget in (self.transcript, self.intent, self.flag_panel):
            widget.remove_class("-invalid")

    def _recheck_problems(self) -> None:
        """The transcript was edited while the panel shows why submit refused: keep only the
        problems that are still there (the panel goes once the transcript is fixed)."""
        shown = {f for f, w in self._problem_widgets().items() if w.has_class("-invalid")}
        form = self._form()
        left = [
            p
            for p in self.bench.problems(
                replace(form, transcript=tidy_transcript(form.transcript)[0])
            )
            if p[0] in shown
        ]
        if not left:
            self._clear_errors()
            return
        self._mark_problems(left)

    def _problem_widgets(self) -> dict[str, TranscriptField | IntentPicker | FlagPanel]:
        panel = self.flag_panel
        return {"transcript": self.transcript, "intent": self.intent, "note": panel, "flags": panel}

    def _show_problems(self, problems: list[tuple[str, str, str]]) -> None:
        self._mark_problems(problems)
        first = problems[0][0]
        if first == "intent":
            self.focus_intent()
        elif first == "note":
            self.focus_note()
        else:
            self.focus_transcript()
        self.notify(problems[0][2], title="Cannot submit yet", severity="warning", timeout=4)

    def _mark_problems(self, problems: list[tuple[str, str, str]]) -> None:
        widgets = self._problem_widgets()
        for widget in set(widgets.values()):
            widget.remove_class("-invalid")
        for field, _reason, _message in problems:
            widgets.get(field, self.transcript).add_class("-invalid")
        text = " · ".join(f"{field}: {message}" for field, _r, message in problems)
        error = self.query_one("#form-error", Static)
        # The server's messages too: drawn as written (no markup), no character a control.
        error.update(Content(for_terminal(text)))
        error.add_class("-shown")

    def _refused(self, outcome: Refused) -> None:
        self.notify(outcome.message, severity=outcome.severity, timeout=4)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ actions: form

    # Each runs after every key typed before it, and before any typed after it
    # (annotator/typeahead.py).

    def action_form_submit(self) -> None:
        self._submit()

    def action_form_skip(self) -> None:
        self._skip()

    def action_form_undo(self) -> None:
        self._undo()

    def action_form_clear_transcript(self) -> None:
        self._clear_transcript()

    def action_toggle_flag(self, flag_id: str) -> None:
        self._toggle_flag(flag_id)

    def action_insert_tag(self, tag: str) -> None:
        self._insert_tag(tag)

    def _submit(self) -> None:
        if (unseen := self._draft_refusal()) is not None:
            self.notify(unseen, title="Not yet", severity="warning", timeout=5, markup=False)
            return
        form = self._tidied(self._form())
        outcome = self.bench.submit(form)
        if isinstance(outcome, Invalid):
            self._show_problems(outcome.problems)
        elif isinstance(outcome, Refused):
            self._refused(outcome)
        elif isinstance(outcome, Amended):
            self.notify("Amended.", timeout=2)
            self._end_amendment()
        elif isinstance(outcome, Submitted):
            # The rest waits until the next clip is playing: waking the sync thread now would
            # have it take the store's lock just as the next clip's bookkeeping wants it.
            self.call_later(self._after_submit, outcome.intent)
            if outcome.escalated:
                self.services.player.stop()
                self._hold_advance = True
                from annotator.screens.wellbeing import WellbeingScreen

                notice = WellbeingScreen(self.bench.escalation(outcome.clip_id), outcome.clip_id)
                self.app.push_screen(notice, self._after_wellbeing)
                return
            self.advance()

    def _tidied(self, form: Form) -> Form:
        """The form with its transcript's safe fixes made, in the editor too, and said."""
        text, fixes = tidy_transcript(form.transcript)
        if not fixes:
            return form
        self.transcript.load(text)
        self.notify(f"Fixed before submitting: {', '.join(fixes)}.", timeout=3)
        return replace(form, transcript=text, cursor=self.transcript.editor.cursor_location)

    def _after_submit(self, intent: str) -> None:
        self.bench.after_submit()
        if self._damaged:  # said once, acted on: the next submission clears it
            self._damaged = []
            self._draw_link(self._link)
        self._update_stats()

    def _after_wellbeing(self, _result: None) -> None:
        self._hold_advance = False
        self.advance()

    def _skip(self) -> None:
        if self.bench.amending is not None:
            self._end_amendment()
            return
        clip = self.current
        if clip is None:
            return
        suggested = ReleaseReason.BROKEN_AUDIO if clip.audio is None else None
        from annotator.screens.skip import SkipScreen

        self.app.push_screen(SkipScreen(suggested=suggested), self._skip_chosen)

    def _skip_chosen(self, choice: SkipChoice | None) -> None:
        if choice is None or self.current is None:
            self.focus_transcript()
            return
        self.services.player.stop()
        self.bench.skip(choice.reason, choice.detail)
        self.advance()

    def _undo(self) -> None:
        self._flush_draft()
        outcome = self.bench.undo()
        if isinstance(outcome, Refused):
            self._refused(outcome)
            return
        self._show_reopened(outcome)

    def _show_reopened(self, reopened: Reopened) -> None:
        self.services.player.stop()
        previous = reopened.clip
        a = reopened.item.annotation
        bar = self.player_bar
        if previous is not None:
            number = self._shown_at.get(previous.lease_id, 0)
            self._show_header(previous.lease, amending=True, position=number)
            duration = (
                previous.audio.duration_s if previous.audio else previous.lease.clip.duration_s
            )
            bar.load(previous.envelope, duration)
            if previous.audio is not None:
                self.services.player.load(previous.audio)
        else:
            self.header.show_clip(0, reopened.item.clip_id, 0.0, "", amending=True)
            bar.load((), 0.0)
            bar.status = "audio no longer in memory"
        self._fill_form(a.transcript, a.intent, a.flags, a.note, cursor=None)
        self._end_review()
        self.notify("Reopened your submission. Submit to amend it; skip to cancel.", timeout=4)
        self.focus_transcript()

    def _end_amendment(self) -> None:
        self.services.player.stop()
        self._draw(self.bench.end_amendment())

    def _clear_transcript(self) -> None:
        self.transcript.clear_text()
        self.focus_transcript()

    def _toggle_flag(self, flag_id: str) -> None:
        panel = self.flag_panel
        try:
            panel.toggle(flag_id)
        except ValueError:
            self.notify(f"This server's taxonomy has no flag {flag_id!r}.", severity="warning")
            return
        if flag_id in panel.flags and flag_id in self.index.escalation_flags:
            # Raising an escalation flag stops the sound at once (welfare rule, issue 11); it
            # plays again only if the annotator presses play.
            self.services.player.pause()
        self._apply_implied_intent()
        if panel.note_required and not panel.note.strip():
            self.focus_note()  # now, not when Changed arrives: the next key is for the note

    def _insert_tag(self, tag: str) -> None:
        self.transcript.insert_tag(tag)
        self.focus_transcript()

    # ------------------------------------------------------------------ focus

    # Widget.focus() is deferred (call_later): keys a fast typist has already sent — ctrl+l then
    # "weather" within a frame, or type-ahead right after submit — would still land in the old
    # field. Screen.set_focus moves focus before the next queued key is dispatched.

    def focus_transcript(self) -> None:
        self.set_focus(self.transcript.editor)

    def focus_intent(self) -> None:
        self.set_focus(self.intent.query_one(Input))

    def focus_note(self) -> None:
        self.flag_panel.focus_note()  # also shows the note row
        self.set_focus(self.flag_panel.query_one(Input))

    # ------------------------------------------------------------------ actions: focus

    def action_focus_transcript(self) -> None:
        self.focus_transcript()

    def action_focus_intent(self) -> None:
        self.focus_intent()

    def action_focus_flags(self) -> None:
        # The rows: ↑/↓ move through the flags, Space toggles (the note has its own key).
        self.set_focus(self.flag_panel.rows)

    def action_focus_note(self) -> None:
        self.focus_note()

    # ------------------------------------------------------------------ actions: player
    # The keys are annotator/screens/player_keys.py's; a listen counts on the clip clock.

    def played(self) -> None:
        if self.clock is not None:
            self.clock.played()

    # ------------------------------------------------------------------ actions: app

    def action_show_help(self) -> None:
        from annotator.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.services.keymap))

    def action_show_conflicts(self) -> None:
        from annotator.screens.conflicts import ConflictsScreen

        self.app.push_screen(ConflictsScreen(self.services.store))

    def action_show_opt_outs(self) -> None:
        from annotator.screens.opt_outs import OptOuts

        OptOuts(self, self.services.client_factory, self.services.taxonomy.flags).open()

    def action_relay_pair(self) -> None:
        from annotator.screens.relay_pair import pair_relay_again

        pair_relay_again(self.app, self.services.player)

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_go_offline(self) -> None:
        if self.services.client_factory is None or self.services.cache is None:
            self.notify("Offline checkout needs a server and the clip cache.", severity="warning")
            return
        if not self.query("#checkout"):
            # Mounted only while a checkout runs, so the resting layout never changes.
            bar = ProgressBar(total=GO_OFFLINE_CLIPS, show_eta=False, id="checkout")
            self.mount(bar, after=self.query_one("#banner"))
        self.go_offline(GO_OFFLINE_CLIPS)

    @work(thread=True, exclusive=True, group="checkout", exit_on_error=False)
    def go_offline(self, count: int) -> None:
        result = self.bench.checkout(count, self._post_checkout_progress)
        self.app.call_from_thread(self._checked_out, result)

    @on(CheckoutProgress)
    def _checkout_progress(self, message: CheckoutProgress) -> None:
        for bar in self.query("#checkout").results(ProgressBar):
            bar.update(total=message.total, progress=message.done)

    def _checked_out(self, result: CheckoutResult) -> None:
        self.query("#checkout").remove()
        n = len(result.leases)
        if result.error is not None:
            self.notify(
                f"{result.error}" + (f" ({n} clips were checked out before that)" if n else ""),
                title="Checkout stopped",
                severity="error",
                timeout=8,
            )
            if not n:
                return
        if not n:
            self.notify("The queue has no clips for you right now.", title="Nothing checked out")
            return
        self.notify(
            f"{n} clips are on this machine: you can keep working without a network.",
            title="Ready to go offline",
            timeout=6,
        )

    def action_quit(self) -> None:
        self._flush_draft()
        self.app.exit(0)
