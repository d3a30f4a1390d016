"""The rule that a machine draft is never submitted unseen and unheard.

A clip whose transcript came from the recogniser (`Clip.asr_words`) may be submitted with the
draft's text unchanged only once the clip has been heard through to its end without skipping
ahead (seeking back and replaying are fine; a jump forward leaves the skipped part unheard).
Any edit to the text counts as the annotator having read it, so it may then be submitted. A clip
whose audio cannot be played cannot be heard: its draft must be edited or cleared.

`DraftReview` follows one clip: `listened(position)` is fed the playhead (the screen's
15 Hz tick); `refusal(text)` is why a submit of `text` is refused, or None; `note(text)` is the
line the screen shows above the transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["END_SLACK_S", "MAX_STEP_S", "DraftReview"]

#: The last moments of a clip that need not be heard (the device stops a little short).
END_SLACK_S = 0.3
#: The most the playhead moves between two ticks while simply playing (2× speed, a slow tick).
MAX_STEP_S = 0.75


@dataclass
class DraftReview:
    draft: str
    """The machine draft's text as it was put in the transcript."""
    duration_s: float
    playable: bool
    clear_key: str = ""
    replay_key: str = ""
    heard_until: float = 0.0
    _last: float | None = None

    @property
    def heard(self) -> bool:
        return self.heard_until >= max(0.0, self.duration_s - END_SLACK_S)

    def listened(self, position: float) -> None:
        last, self._last = self._last, position
        if not self.playable or last is None:
            return
        step = position - last
        # Heard up to here when it played on from a point already heard (or from the start).
        if 0.0 <= step <= MAX_STEP_S and last <= self.heard_until + MAX_STEP_S:
            self.heard_until = max(self.heard_until, position)

    def unchanged(self, text: str) -> bool:
        return text.strip() == self.draft.strip()

    def refusal(self, text: str) -> str | None:
        if not self.unchanged(text) or self.heard:
            return None
        clear = f" ({self.clear_key} clears it)" if self.clear_key else ""
        if not self.playable:
            return (
                "This is the machine's draft, unchanged, and the audio cannot be played: "
                f"edit or clear it{clear}."
            )
        replay = f" ({self.replay_key} replays)" if self.replay_key else ""
        return (
            "This is the machine's draft, unchanged and not yet heard to the end: "
            f"listen to the end{replay} or edit it{clear}."
        )

    def note(self, text: str) -> str:
        """One line (it fits 80 columns with a short clear key)."""
        clear = f" · {self.clear_key} clears" if self.clear_key else ""
        if not self.unchanged(text):
            return f"machine draft, edited · underlined = still unsure{clear}"
        if self.heard:
            return f"✓ machine draft, heard to the end · underlined = unsure{clear}"
        if not self.playable:
            return f"⚠ machine draft, no audio: edit or clear it to submit{clear}"
        return f"⚠ machine draft: listen to the end or edit before submit{clear}"
