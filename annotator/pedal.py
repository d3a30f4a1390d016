"""Foot pedals: hold-to-play where the terminal reports key releases, a toggle elsewhere.

A pedal programmed as a keyboard sends a key press when pressed and, in a terminal speaking the
kitty keyboard protocol with "report event types" on, a release when let go. With the pedal
keymap the App runs `annotator/pedal_driver.py`'s driver, which asks the terminal for releases
and reads them (Textual itself does neither). If the terminal answers that it reports them, the
play pedal (the keymap's first `player.toggle` key, f10) plays while held and pauses when let go;
otherwise it toggles, as every other play key does. The screen says which, once the terminal has
answered or `ANSWER_WAIT_S` has passed without an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from annotator.keymap import ResolvedKeymap
    from annotator.pedal_driver import KeyReleaseSupport, PlayPedal
    from annotator.screens.annotate import AnnotateScreen

__all__ = ["ANSWER_WAIT_S", "PEDAL_KEYMAP", "PedalHoldApp", "hold_key", "pedal_notice"]

PEDAL_KEYMAP = "pedal"
#: How long the screen waits for the terminal's answer before saying that the pedal toggles.
ANSWER_WAIT_S = 1.5

PedalMode = Literal["holds", "toggles", "toggles-no-releases"]


def hold_key(keymap: ResolvedKeymap) -> str:
    """The play pedal's key ("" unless the pedal keymap is in use)."""
    if keymap.name != PEDAL_KEYMAP:
        return ""
    keys = keymap.keys_for("player.toggle")
    return keys[0].strip() if keys else ""


def pedal_notice(key: str, mode: PedalMode) -> str:
    """What to tell an annotator on the pedal keymap about the play pedal `key`."""
    if mode == "holds":
        return (
            f"Hold the play pedal ({key}) to play; let go to pause. This terminal reports key "
            "releases."
        )
    why = (
        "this terminal speaks the kitty keyboard protocol but does not report key releases"
        if mode == "toggles-no-releases"
        else "this terminal does not report key releases (kitty, foot, WezTerm and Ghostty do)"
    )
    return (
        f"The play pedal ({key}) toggles: press it to play, press it again to pause. Holding it "
        f"does not keep playing: {why}."
    )


class PedalHoldApp:
    """Mixin for the annotator's App: the messages `pedal_driver.HoldParser` sends."""

    def _annotate_screen(self) -> AnnotateScreen | None:
        raise NotImplementedError

    #: The terminal's answer, kept: it may come before the annotate screen is mounted.
    pedal_mode: PedalMode | None = None

    def on_key_release_support(self, message: KeyReleaseSupport) -> None:
        self.pedal_mode = "holds" if message.releases else "toggles-no-releases"
        screen = self._annotate_screen()
        if screen is not None:
            screen.pedal_answered(self.pedal_mode)

    def on_play_pedal(self, message: PlayPedal) -> None:
        screen = self._annotate_screen()
        if screen is not None:
            screen.play_pedal(down=message.down)

    def on_app_blur(self) -> None:
        # A key held while the terminal loses focus gets no release: the pedal counts as let go.
        screen = self._annotate_screen()
        if screen is not None and screen.pedal_down:
            screen.play_pedal(down=False)
