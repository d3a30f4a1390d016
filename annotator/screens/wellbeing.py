"""After an escalation: a pause before the next clip, so nobody is rushed past something hard."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

MESSAGE = (
    "You flagged distress. Take a moment if you need it.\n\n"
    "The report has gone to the supervisors; you do not need to do anything more.\n"
    "The next clip waits, paused, until you are ready."
)


class WellbeingScreen(ModalScreen[None]):
    """Auto-advance stays paused until Enter."""

    DEFAULT_CSS = """
    WellbeingScreen { align: center middle; }
    WellbeingScreen > Vertical {
        width: 64; height: auto; padding: 1 2;
        border: thick $success; background: $surface;
    }
    WellbeingScreen .title { text-style: bold; margin-bottom: 1; }
    WellbeingScreen .hint { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "continue", "Continue", priority=True),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="wellbeing"):
            yield Label("A moment for you", classes="title")
            yield Label(MESSAGE)
            yield Label("Enter to continue", classes="hint")

    def action_continue(self) -> None:
        self.dismiss(None)
