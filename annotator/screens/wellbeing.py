"""After an escalation: a pause before the next clip, so nobody is rushed past something hard.

What it says about the report is the outbox's truth (`Escalation`): queued until the server has
it, then when it was delivered; `update_escalation` redraws it when a sync round lands."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from annotator.workbench.outcomes import Escalation

PAUSE = "The next clip waits, paused, until you are ready."


class WellbeingScreen(ModalScreen[None]):
    """Auto-advance stays paused until Enter."""

    DEFAULT_CSS = """
    WellbeingScreen { align: center middle; }
    WellbeingScreen > Vertical {
        width: 90%; max-width: 72; height: auto; padding: 1 2;
        border: thick $success; background: $surface;
    }
    WellbeingScreen .title { text-style: bold; margin-bottom: 1; }
    WellbeingScreen #wellbeing-text { width: 100%; height: auto; }
    WellbeingScreen .hint { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "continue", "Continue", priority=True),
    ]

    def __init__(self, escalation: Escalation, clip_id: str = "") -> None:
        super().__init__()
        self.escalation = escalation
        #: The clip whose submission raised it (to look its delivery up again).
        self.escalation_clip = clip_id

    def compose(self) -> ComposeResult:
        with Vertical(id="wellbeing"):
            yield Label("A moment for you", classes="title")
            yield Static(self._text(), id="wellbeing-text", markup=False)
            yield Label("Enter to continue", classes="hint")

    def _text(self) -> str:
        return f"{self.escalation.text()}\n{PAUSE}"

    @property
    def text(self) -> str:
        return self._text()

    def update_escalation(self, escalation: Escalation) -> None:
        self.escalation = escalation
        self.query_one("#wellbeing-text", Static).update(self._text())

    def action_continue(self) -> None:
        self.dismiss(None)
