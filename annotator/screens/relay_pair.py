"""Pair with the SSH audio relay again, in place: a masked prompt for the relay's new secret.

After `annotator relay --new-secret` on the laptop the TUI is refused and muted; this prompt takes
the new secret and re-pairs the running player. The clip, the playhead and the draft are left as
they are (the modal only covers them). The secret goes to the player and nowhere else: it is not
logged, not stored, and the field never shows it.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from annotator.audio.player import BackendUnavailableError, Player


class RelayPairScreen(ModalScreen[str | None]):
    """Enter pairs with what was typed or pasted; Escape leaves everything as it was."""

    DEFAULT_CSS = """
    RelayPairScreen { align: center middle; }
    RelayPairScreen > Vertical {
        width: 70; height: auto; padding: 1 2;
        border: thick $accent; background: $surface;
    }
    RelayPairScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Pair with the audio relay[/b]")
            yield Label(
                "Paste the pairing secret your laptop's `annotator relay` shows.", markup=False
            )
            yield Input(password=True, placeholder="relay secret", id="relay-secret")
            yield Label("Enter to pair · Esc to keep annotating muted", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def pair_relay_again(app: App[object], player: Player) -> None:
    """Open the prompt, and re-pair `player` with the secret entered (if it is a relay)."""
    repair = getattr(player, "repair", None)
    if repair is None:
        app.notify(
            "The sound is not going through the SSH relay (--audio relay), so there is "
            "nothing to pair.",
            title="Relay",
            severity="warning",
        )
        return

    def entered(secret: str | None) -> None:
        if secret is None:
            return
        try:
            repair(secret)
        except BackendUnavailableError as exc:
            app.notify(str(exc), title="Relay", severity="error")
            return
        app.notify("Pairing with the relay…", title="Relay", timeout=3)

    app.push_screen(RelayPairScreen(), entered)
