"""The annotate screen's review aids (issue 13's TUI side, issue 14's finding and reopening).

Kept beside `annotate.py` so that file only calls in at a few places:
- a clip is shown: its server suggestions go on digits 1–3 and a machine draft is marked
  (`_begin_review`); nothing is on the bench: `_end_review`;
- every playhead tick: how far the clip has been heard (`_review_tick`), and the draft's line;
- submit: `_draft_refusal()` — a machine draft is never submitted unchanged and unheard
  (`annotator.workbench.draft_review` has the rule);
- a flag toggled: `_apply_implied_intent()` (an unintelligible clip gets `no_speech`, shown);
- the play pedal (pedal keymap): held = play, let go = pause where the terminal reports key
  releases, else it toggles; on mount the screen says which (`annotator/pedal.py`);
- actions: refresh digits 4–9 (the shift's most used intents, only when asked), the history list
  (reopen any submission still inside the amend window).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.screen import Screen

from annotator.pedal import ANSWER_WAIT_S, PedalMode, hold_key, pedal_notice
from annotator.workbench.draft_review import DraftReview
from annotator.workbench.outcomes import Refused, Reopened
from widgets import IntentPicker, TranscriptField

if TYPE_CHECKING:
    from annotator.prefetch import ReadyClip
    from annotator.services import Services
    from annotator.workbench import Workbench


class AnnotateExtras(Screen[None]):
    services: Services
    bench: Workbench
    _review: DraftReview | None = None

    def _first_key(self, binding_id: str) -> str:
        keys = self.services.keymap.keys_for(binding_id)
        return keys[0].strip() if keys else ""

    # ------------------------------------------------------------------ the play pedal

    _pedal_said: PedalMode | None = None
    pedal_down = False

    def _say_pedal(self) -> None:
        """On mount, with the pedal keymap: wait for the terminal's answer (the App passes it to
        `pedal_answered`) unless nothing asked it, then say how the play pedal works."""
        if not hold_key(self.services.keymap):
            return
        from annotator.pedal_driver import HoldDriver

        if answer := self._pedal_answer():
            self.pedal_answered(answer)  # it came before this screen was mounted
        elif not issubclass(self.app.driver_class, HoldDriver) or self.app.is_headless:
            self.pedal_answered("toggles")
        else:
            self.set_timer(ANSWER_WAIT_S, self._pedal_unanswered)

    def _pedal_answer(self) -> PedalMode | None:
        answer: PedalMode | None = getattr(self.app, "pedal_mode", None)  # PedalHoldApp's
        return answer

    def _pedal_unanswered(self) -> None:
        if self._pedal_said is None:
            self.pedal_answered(self._pedal_answer() or "toggles")

    def pedal_answered(self, mode: PedalMode) -> None:
        key = hold_key(self.services.keymap)
        if not key or self._pedal_said == mode or (self._pedal_said and mode != "holds"):
            return  # said already; only the news that the pedal now holds is worth a second toast
        self._pedal_said = mode
        self.notify(pedal_notice(key, mode), title="Foot pedal", timeout=10, markup=False)

    def play_pedal(self, *, down: bool) -> None:
        """Held: play (from where it is); let go: pause. Repeats never arrive here."""
        player = self.services.player
        self.pedal_down = down
        if not down:
            player.pause()
        elif self.app.screen is self and not player.playing:
            self.played()
            player.play()

    def played(self) -> None:
        raise NotImplementedError  # annotate.py counts a deliberate listen

    # ------------------------------------------------------------------ a clip on the bench

    def _begin_review(self, clip: ReadyClip) -> None:
        """After the form is filled for a newly shown clip."""
        lease_clip = clip.lease.clip
        self.query_one(IntentPicker).set_suggestions(lease_clip.suggested_intents)
        field = self.query_one(TranscriptField)
        words = [(w.word, w.confidence) for w in lease_clip.asr_words or ()]
        field.editor.set_draft_words(words)
        if not words:
            self._review = None
            field.draft_note.show_note(None)
            return
        duration = clip.audio.duration_s if clip.audio is not None else lease_clip.duration_s
        self._review = DraftReview(
            draft=lease_clip.asr_hint or " ".join(w for w, _ in words),
            duration_s=duration,
            playable=clip.audio is not None,
            clear_key=self._first_key("form.clear-transcript"),
            replay_key=self._first_key("player.replay"),
        )
        self._show_review_note()

    def _end_review(self) -> None:
        """Nothing new on the bench (waiting, or a submission reopened for amending)."""
        self._review = None
        self.query_one(IntentPicker).set_suggestions(())
        field = self.query_one(TranscriptField)
        field.editor.set_draft_words(())
        field.draft_note.show_note(None)

    def _review_tick(self, position: float) -> None:
        if self._review is not None:
            self._review.listened(position)
            self._show_review_note()

    def _show_review_note(self) -> None:
        review = self._review
        if review is None:
            return
        field = self.query_one(TranscriptField)
        field.draft_note.show_note(
            review.note(field.text), heard=review.heard or not review.unchanged(field.text)
        )

    def _draft_refusal(self) -> str | None:
        """Why submitting now would send an unseen machine draft, or None."""
        if self._review is None or self.bench.amending is not None:
            return None
        return self._review.refusal(self.query_one(TranscriptField).text)

    # ------------------------------------------------------------------ intents

    def _apply_implied_intent(self) -> None:
        """A flag that means "no intent of its own" (unintelligible) picks `no_speech` while
        no intent is picked, and takes it back when the flag goes and nothing else was picked."""
        from widgets import FlagPanel

        picker = self.query_one(IntentPicker)
        index = self.bench.index
        implied = index.implied_intent(self.query_one(FlagPanel).flags) if index else None
        if implied is not None and picker.value is None:
            intent, flag = implied
            picker.auto_pick(intent, f"set by the {flag} flag")
        elif implied is None and picker.auto_reason is not None:
            picker.reset_value()

    def action_refresh_digits(self) -> None:
        picker = self.query_one(IntentPicker)
        picker.set_frequent(self.bench.frequent_intents())
        held = ", ".join(f"{n} {i}" for n in range(4, 10) if (i := picker.digit_intent(n)))
        self.notify(
            f"4–9 now: {held}" if held else "No submissions yet to put on 4–9.",
            title="Digits updated",
            timeout=4,
            markup=False,
        )

    # ------------------------------------------------------------------ reopening

    def _show_reopened(self, reopened: Reopened) -> None:
        raise NotImplementedError  # annotate.py draws a reopened submission

    def _refused(self, outcome: Refused) -> None:
        raise NotImplementedError

    def action_show_history(self) -> None:
        items = self.bench.amendable()
        if not items:
            self.notify("No submission is inside the amend window.", timeout=3)
            return
        from annotator.screens.history import HistoryScreen  # not needed before the first clip

        self.app.push_screen(HistoryScreen(items, time.time()), self._history_chosen)

    def _history_chosen(self, key: str | None) -> None:
        if key is None:
            return
        self.flush()
        outcome = self.bench.undo(key)
        if isinstance(outcome, Refused):
            self._refused(outcome)
            return
        self._show_reopened(outcome)

    def flush(self) -> None:
        raise NotImplementedError
