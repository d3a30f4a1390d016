"""The annotate screen: one clip at a time, the next one already in memory.

The hot path — submit key to the next clip playing — is local only: validate with the shared
taxonomy rule, one SQLite transaction in the store, `sync.wake()`, `prefetcher.take()` (a deque pop)
and `player.load/play`. Everything that talks to the network runs in the prefetch thread, the sync
thread, or a named thread worker whose errors the App handles in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic as _monotonic
from time import sleep as _sleep
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingsMap
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from annotator.actions import app_bindings
from annotator.screens.checkout import checkout_to_cache
from annotator.screens.help import HelpScreen
from annotator.screens.skip import SkipScreen
from annotator.screens.wellbeing import WellbeingScreen
from annotator.session import ClipClock, Session
from api.models import AnnotationIn, Lease, ReleaseReason, Stats
from api.taxonomy import TaxonomyIndex
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
    from annotator.app import Services
    from annotator.prefetch import ReadyClip
    from annotator.store.models import HistoryItem

#: The playhead's refresh rate: smooth to the eye, a rounding error of CPU.
PLAYHEAD_HZ = 15
MIN_SPEED, MAX_SPEED = 0.5, 2.0
#: Clips the "go offline" action checks out (about an hour of work at the target pace).
GO_OFFLINE_CLIPS = 100
#: After asking for the next clip's sound, the event loop stands aside this long at most (asleep,
#: so the device threads get the interpreter) until the device has its first buffer; the redraw
#: that follows a clip change would otherwise hold them off for several milliseconds.
AUDIO_START_WAIT_S = 0.004


class PrefetchChanged(Message):
    """Posted (thread-safely) by the prefetch thread: clips arrived or the queue state changed."""


class SyncChanged(Message):
    """Posted (thread-safely) by the sync thread: the outbox moved or the server came or went."""


@dataclass
class _Amending:
    """Undo in progress: the reopened submission, and the clip put aside to come back to."""

    item: HistoryItem
    parked: ReadyClip | None
    parked_clock: ClipClock | None


class AnnotateScreen(Screen[None]):
    DEFAULT_CSS = """
    AnnotateScreen { layout: vertical; }
    AnnotateScreen #banner {
        height: auto; padding: 0 1; display: none;
        background: $warning 20%; color: $text-warning; text-style: bold;
    }
    AnnotateScreen #banner.-shown { display: block; }
    AnnotateScreen #banner.-error { background: $error 25%; color: $text-error; }
    AnnotateScreen TranscriptField { height: 2fr; min-height: 4; max-height: 14; }
    AnnotateScreen #form-error {
        height: auto; padding: 0 1; display: none; color: $text-error; text-style: bold;
    }
    AnnotateScreen #form-error.-shown { display: block; }
    AnnotateScreen #lower { height: 3fr; min-height: 9; }
    AnnotateScreen #intent { height: 1fr; }
    AnnotateScreen #intent > OptionList { height: 1fr; min-height: 3; }
    AnnotateScreen .-invalid { border-left: thick $error; }
    """

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        # The keys come from the resolved keymap, so they are set per instance, not per class.
        self._bindings = BindingsMap.merge(
            [self._bindings, BindingsMap(app_bindings(services.keymap.bindings))]
        )
        self.index = TaxonomyIndex(services.taxonomy)
        settings = services.settings
        self.session = Session(
            daily_target=settings.daily_target, shift_hours=settings.shift_hours, now=services.clock
        )
        self.current: ReadyClip | None = None
        self.clock: ClipClock | None = None
        self._previous: ReadyClip | None = None  # the last submitted clip, for undo's audio
        self._amending: _Amending | None = None
        self._hold_advance = False  # wellbeing notice open: do not auto-advance
        self._draft_dirty = False
        self._offline_reason: str | None = None
        self._playhead_timer: Timer | None = None
        self._relay_down_polls = 0  # consecutive polls that found the audio relay disconnected

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
        self.intent.set_recent(self._recent_intents())
        stats = self.stats
        stats.target = s.settings.daily_target
        stats.shift_hours = s.settings.shift_hours
        stats.backend = s.player.name
        stats.backend_reason = s.player_reason
        # The whole shift long, not a toast: recordings may be crossing the network in clear.
        stats.insecure = bool(s.settings.insecure)
        stats.conflicts = s.store.conflict_count()
        self.show_banner(self._resting_banner())
        # Threads call these from outside the event loop; post_message is thread-safe.
        s.prefetch_events.target = self._post_prefetch_changed
        s.sync_events.target = self._post_sync_changed
        self._playhead_timer = self.set_interval(1 / PLAYHEAD_HZ, self._tick)
        self.set_interval(min(1.0, s.settings.draft_debounce_s), self._flush_draft)
        self.set_interval(30.0, self.refresh_stats)
        self.set_interval(0.5, self._poll_player_link)
        self.refresh_stats()
        self.advance()

    def _post_prefetch_changed(self, *_: object) -> None:
        self.post_message(PrefetchChanged())

    def _post_sync_changed(self, *_: object) -> None:
        self.post_message(SyncChanged())

    def _recent_intents(self) -> list[str]:
        recent: list[str] = []
        for item in self.services.store.history(50):
            if item.annotation.intent not in recent:
                recent.append(item.annotation.intent)
        return recent[:9]

    # ------------------------------------------------------------------ banners

    def _resting_banner(self) -> str:
        """What the banner says when nothing is wrong with the network: muted, or nothing."""
        s = self.services
        if s.player.name == "none":
            return f"{s.player_reason} — run `annotator doctor` to check audio"
        if self._relay_down_polls >= 2:  # not for the moment the link takes to come up
            text = str(getattr(s.player, "status", "")) or "audio relay disconnected: muted"
            keys = s.keymap.keys_for("app.relay-pair")
            if getattr(s.player, "needs_secret", False) and keys:
                text += f" — press {keys[0]} to enter it"
            return text
        return ""

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
        if (now or before) and self._offline_reason is None:
            self.show_banner(self._resting_banner())

    def show_banner(self, text: str, *, error: bool = False) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.set_class(bool(text), "-shown")
        banner.set_class(error, "-error")

    def set_offline(self, offline: bool, reason: str = "") -> None:
        """Offline: keep working from what is prefetched; submissions wait in the outbox."""
        was = self._offline_reason is not None
        self._offline_reason = reason if offline else None
        self.stats.online = not offline
        if offline:
            self.show_banner(
                f"offline — {reason or 'the server cannot be reached'}. Keep working: "
                "submissions are saved and sent when the server answers."
            )
        elif was:
            self.show_banner(self._resting_banner())
            # Whichever thread saw the server first, the other need not wait out its backoff.
            self.services.prefetcher.wake()
            if self.services.sync is not None:
                self.services.sync.wake(force=True)  # work that sat out backoff leaves now
            self.refresh_stats()

    # ------------------------------------------------------------------ clips

    def advance(self) -> None:
        """Show the next clip: instant when one is prefetched, else wait for the prefetch thread."""
        if self._hold_advance or self._amending is not None:
            return
        clip = self.services.prefetcher.take()
        if clip is None:
            self._show_waiting()
            self.services.prefetcher.request()
            return
        self.show_clip(clip)

    def _show_waiting(self) -> None:
        self.current = None
        self.clock = None
        self.services.player.stop()
        self.header.clear()
        bar = self.player_bar
        bar.load((), 0.0)
        status = self.services.prefetcher.status
        bar.status = status.message or "waiting for the next clip…"
        self._reset_form("")

    def show_clip(
        self, clip: ReadyClip, *, clock: ClipClock | None = None, count: bool = True
    ) -> None:
        s = self.services
        # Sound first: the time from the submit key to the next clip's first frame at the device
        # is the figure that matters, and nothing below is needed for it.
        if clip.audio is not None:
            s.player.load(clip.audio)
            s.player.play()
            self._let_audio_start()
        else:
            s.player.stop()
        self.current = clip
        lease = clip.lease
        self.clock = clock or (
            self.session.clip_shown() if count else ClipClock(self.services.clock)
        )
        if clip.audio is not None:
            self.clock.played()
        self._show_header(lease)
        bar = self.player_bar
        duration = clip.audio.duration_s if clip.audio is not None else lease.clip.duration_s
        bar.load(clip.envelope, duration)
        draft = s.store.load_draft(lease.lease_id)
        if draft is not None:
            self._fill_form(
                draft.transcript, draft.intent, draft.flags, draft.note, cursor=draft.cursor
            )
        else:
            self._reset_form(lease.clip.asr_hint or "")
        if clip.audio is None:
            bar.status = f"broken audio: {clip.error}"
            self.notify(
                f"{clip.error}\nFlag it unintelligible and submit, or skip it as broken audio.",
                title="This clip cannot be played",
                severity="warning",
                timeout=8,
            )
        self.focus_transcript()
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
        if self.current is None or self.current.lease_id != lease.lease_id:
            return
        self.services.store.remember_current(lease)
        self.stats.prefetched = self.services.prefetcher.status.ready

    def _show_header(self, lease: Lease, *, amending: bool = False) -> None:
        late = lease.expires_at <= datetime.now(UTC)
        self.header.show_clip(
            self.session.shown,
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

    # ------------------------------------------------------------------ prefetch & sync events

    @on(PrefetchChanged)
    def _prefetch_changed(self) -> None:
        p = self.services.prefetcher
        status = p.status
        self.stats.prefetched = status.ready
        from annotator.prefetch import PrefetchState

        if status.state is PrefetchState.OFFLINE:
            self.set_offline(True, status.message)
        elif status.state is PrefetchState.OK and self._offline_reason is not None:
            self.set_offline(False)
        elif status.state is PrefetchState.FAILED:
            self.show_banner(status.message, error=True)
        while p.lost:
            lost = p.lost.popleft()
            if self.current is not None and self.current.lease_id == lost:
                # The server may still take it as late; say so rather than throw the work away.
                self._show_header(self.current.lease)
        if self.current is None and self._amending is None:
            if status.state is PrefetchState.EMPTY:
                self.player_bar.status = "the queue is empty — waiting for new clips…"
            self.advance()

    @on(SyncChanged)
    def _sync_changed(self) -> None:
        sync = self.services.sync
        self.stats.outbox = self.services.store.outbox_count()
        self.stats.conflicts = self.services.store.conflict_count()
        if sync is not None:
            online = bool(getattr(sync, "online", True))
            if online and self._offline_reason is not None:
                self.set_offline(False)
            elif not online and self._offline_reason is None:
                self.set_offline(True, "the server does not answer")
        self.refresh_stats()

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
        bar.clips_per_hour = pace.clips_per_hour
        bar.median_seconds = pace.median_seconds
        bar.outbox = self.services.store.outbox_count()
        bar.prefetched = self.services.prefetcher.status.ready

    # ------------------------------------------------------------------ playhead & drafts

    def _tick(self) -> None:
        player = self.services.player
        bar = self.player_bar
        bar.position = player.position
        bar.playing = player.playing
        bar.speed = player.speed

    @on(TranscriptEditor.Edited)
    @on(IntentPicker.Picked)
    @on(FlagPanel.Changed)
    def _form_changed(self, event: Message) -> None:
        self._draft_dirty = True
        if self.clock is not None:
            self.clock.activity()
        if isinstance(event, IntentPicker.Picked | FlagPanel.Changed):
            self._clear_errors()

    def _flush_draft(self) -> None:
        """Debounced draft save (at most one commit per interval, only when something changed)."""
        if not self._draft_dirty or self.current is None or self._amending is not None:
            return
        from annotator.store.models import Draft

        self._draft_dirty = False
        lease = self.current.lease
        row, col = self.transcript.editor.cursor_location
        self.services.store.save_draft(
            Draft(
                lease_id=lease.lease_id,
                clip_id=lease.clip.clip_id,
                transcript=self.transcript.text,
                intent=self.intent.value,
                flags=tuple(sorted(self.flag_panel.flags)),
                note=self.flag_panel.note or None,
                cursor=(row, col),
            )
        )

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

    def _form_annotation(self, lease: Lease) -> AnnotationIn | None:
        """The form as an annotation, or None after showing what is wrong (nothing is cleared)."""
        transcript = self.transcript.text
        intent = self.intent.value
        flags = sorted(self.flag_panel.flags)
        note = self.flag_panel.note.strip() or None
        problems = self.index.check_annotation(
            transcript=transcript, intent=intent, flags=flags, note=note
        )
        if problems:
            self._show_problems(problems)
            return None
        assert intent is not None
        return AnnotationIn(
            lease_id=lease.lease_id,
            fence=lease.fence,
            transcript=transcript,
            intent=intent,
            flags=flags,
            note=note,
            timings=self.clock.timings() if self.clock is not None else None,
        )

    def _show_problems(self, problems: list[tuple[str, str, str]]) -> None:
        self._clear_errors()
        widgets = {"transcript": self.transcript, "intent": self.intent, "note": self.flag_panel}
        widgets["flags"] = self.flag_panel
        for field, _reason, _message in problems:
            widgets.get(field, self.transcript).add_class("-invalid")
        text = " · ".join(f"{field}: {message}" for field, _r, message in problems)
        error = self.query_one("#form-error", Static)
        error.update(text)
        error.add_class("-shown")
        first = problems[0][0]
        if first == "intent":
            self.focus_intent()
        elif first == "note":
            self.focus_note()
        else:
            self.focus_transcript()
        self.notify(problems[0][2], title="Cannot submit yet", severity="warning", timeout=4)

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
        if self._amending is not None:
            self._submit_amendment(self._amending)
            return
        clip = self.current
        if clip is None:
            self.notify("No clip on screen yet.", severity="warning", timeout=3)
            return
        annotation = self._form_annotation(clip.lease)
        if annotation is None:
            return
        s = self.services
        from annotator.store.db import AlreadySubmitted

        try:
            s.store.submit(annotation, clip_id=clip.lease.clip.clip_id)
        except AlreadySubmitted as e:
            self.notify(str(e), severity="warning")
            return
        s.prefetcher.finish(clip.lease_id)
        assert self.clock is not None
        self.session.clip_done(self.clock)
        self._previous = clip
        self.current = None
        # The rest waits until the next clip is playing: waking the sync thread now would have it
        # take the store's lock just as the next clip's bookkeeping wants it.
        self.call_later(self._after_submit, annotation.intent)
        if set(annotation.flags) & self.index.escalation_flags:
            s.player.stop()
            self._hold_advance = True
            self.app.push_screen(WellbeingScreen(), self._after_wellbeing)
            return
        self.advance()

    def _after_submit(self, intent: str) -> None:
        if self.services.sync is not None:
            self.services.sync.wake()
        self.intent.remember(intent)
        self._update_stats()

    def _after_wellbeing(self, _result: None) -> None:
        self._hold_advance = False
        self.advance()

    def _skip(self) -> None:
        if self._amending is not None:
            self._end_amendment()
            return
        clip = self.current
        if clip is None:
            return
        suggested = ReleaseReason.BROKEN_AUDIO if clip.audio is None else None
        self.app.push_screen(SkipScreen(suggested=suggested), self._skip_chosen)

    def _skip_chosen(self, reason: ReleaseReason | None) -> None:
        clip = self.current
        if reason is None or clip is None:
            self.focus_transcript()
            return
        s = self.services
        s.player.stop()
        s.prefetcher.release(clip.lease_id, reason)
        s.store.forget_lease(clip.lease_id)
        self.current = None
        self.advance()

    def _undo(self) -> None:
        if self._amending is not None:
            self.notify("Already amending: submit (or skip to cancel) first.", timeout=3)
            return
        history = self.services.store.history(1)
        if not history:
            self.notify("Nothing to undo yet.", timeout=3)
            return
        item = history[0]
        if item.amend_until and datetime.fromisoformat(item.amend_until) <= datetime.now(UTC):
            self.notify("Too late to amend: the server's amend window has closed.", timeout=4)
            return
        if item.state.value in ("conflict", "rejected"):
            self.notify(f"That submission is {item.state.value}; it cannot be amended.")
            return
        self._flush_draft()
        self.services.player.stop()
        self._amending = _Amending(item, self.current, self.clock)
        previous = self._previous
        if previous is not None and previous.lease_id != item.lease_id:
            previous = None
        self.current = None
        self.clock = ClipClock(self.services.clock)
        a = item.annotation
        bar = self.player_bar
        if previous is not None:
            self._show_header(previous.lease, amending=True)
            duration = (
                previous.audio.duration_s if previous.audio else previous.lease.clip.duration_s
            )
            bar.load(previous.envelope, duration)
            if previous.audio is not None:
                self.services.player.load(previous.audio)
        else:
            self.header.show_clip(0, item.clip_id, 0.0, "", amending=True)
            bar.load((), 0.0)
            bar.status = "audio no longer in memory"
        self._fill_form(a.transcript, a.intent, a.flags, a.note, cursor=None)
        self.notify("Reopened your last submission. Submit to amend it; skip to cancel.", timeout=4)
        self.focus_transcript()

    def _submit_amendment(self, amending: _Amending) -> None:
        item = amending.item
        transcript = self.transcript.text
        intent = self.intent.value
        flags = sorted(self.flag_panel.flags)
        note = self.flag_panel.note.strip() or None
        problems = self.index.check_annotation(
            transcript=transcript, intent=intent, flags=flags, note=note
        )
        if problems:
            self._show_problems(problems)
            return
        assert intent is not None
        # Lease, fence and timings stay those of the original submission (the store enforces it).
        annotation = item.annotation.model_copy(
            update={"transcript": transcript, "intent": intent, "flags": flags, "note": note}
        )
        from annotator.store.db import AmendError

        try:
            self.services.store.amend(item.key, annotation)
        except AmendError as e:
            self.notify(str(e), title="Cannot amend", severity="error")
            return
        if self.services.sync is not None:
            self.services.sync.wake()
        self.notify("Amended.", timeout=2)
        self._end_amendment()

    def _end_amendment(self) -> None:
        amending, self._amending = self._amending, None
        if amending is None:
            return
        self.services.player.stop()
        if amending.parked is not None:
            self.show_clip(amending.parked, clock=amending.parked_clock, count=False)
        else:
            self.advance()

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
        # The panel takes no focus (flags toggle by key); its only focusable part is the note.
        self.focus_note()

    def action_focus_note(self) -> None:
        self.focus_note()

    # ------------------------------------------------------------------ actions: player

    def action_player_toggle(self) -> None:
        player = self.services.player
        if not player.playing and self.clock is not None:
            self.clock.played()
        player.toggle()

    def action_player_replay(self) -> None:
        player = self.services.player
        player.seek(0.0)
        if not player.playing:
            player.play()
        if self.clock is not None:
            self.clock.played()

    def action_player_back(self) -> None:
        player = self.services.player
        player.seek(max(0.0, player.position - self.services.settings.seek_seconds))

    def action_player_forward(self) -> None:
        player = self.services.player
        player.seek(player.position + self.services.settings.seek_seconds)

    def _step_speed(self, direction: int) -> None:
        player = self.services.player
        step = self.services.settings.speed_step
        speed = round(min(MAX_SPEED, max(MIN_SPEED, player.speed + direction * step)), 2)
        player.set_speed(speed)
        self.player_bar.speed = speed

    def action_player_slower(self) -> None:
        self._step_speed(-1)

    def action_player_faster(self) -> None:
        self._step_speed(+1)

    # ------------------------------------------------------------------ actions: app

    def action_show_help(self) -> None:
        self.app.push_screen(HelpScreen(self.services.keymap))

    def action_show_conflicts(self) -> None:
        from annotator.screens.conflicts import ConflictsScreen

        self.app.push_screen(ConflictsScreen(self.services.store))

    def action_relay_pair(self) -> None:
        from annotator.screens.relay_pair import pair_relay_again

        pair_relay_again(self.app, self.services.player)

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_go_offline(self) -> None:
        if self.services.client_factory is None or self.services.cache is None:
            self.notify("Offline checkout needs a server and the clip cache.", severity="warning")
            return
        self.notify(f"Checking out {GO_OFFLINE_CLIPS} clips for offline work…", timeout=3)
        self.go_offline(GO_OFFLINE_CLIPS)

    @work(thread=True, exclusive=True, group="checkout", exit_on_error=False)
    def go_offline(self, count: int) -> None:
        s = self.services
        assert s.client_factory is not None and s.cache is not None
        leases = checkout_to_cache(s.client_factory, s.cache, count)
        self.app.call_from_thread(self._checked_out, leases)

    def _checked_out(self, leases: list[Lease]) -> None:
        for lease in leases:
            self.services.store.remember_lease(lease)
        self.services.prefetcher.adopt(leases)
        self.notify(
            f"{len(leases)} clips are on this machine: you can keep working without a network.",
            title="Ready to go offline",
            timeout=6,
        )

    def action_quit(self) -> None:
        self._flush_draft()
        self.app.exit(0)
