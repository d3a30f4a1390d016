"""`SuperviseApp`: the supervisors' console (thin, like the annotator's App: `BaseApp` holds the
keymap, the key routing, the size guard and the one worker-error handler)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import BindingType

from annotator.actions import SUPERVISE
from annotator.base_app import BaseApp
from annotator.screens.commands import ActionCommands
from annotator.supervise.screens.escalations import EscalationsScreen
from annotator.supervise.services import ConsoleServices


class SuperviseApp(BaseApp):
    TITLE = "annotator supervise"
    #: The command palette lists the console's actions (annotator/screens/commands.py).
    ACTION_VIEW = SUPERVISE
    COMMANDS: ClassVar = {ActionCommands}
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__(services.keymap)
        self.services = services

    async def on_mount(self) -> None:
        await self.push_screen(EscalationsScreen(self.services))
        for notice in self.services.startup_notices:
            self.notify(notice, severity="warning", timeout=10, markup=False)
        self.start_size_guard()

    @property
    def escalations(self) -> EscalationsScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, EscalationsScreen)), None)

    def report_offline(self, reason: str) -> None:
        screen = self.escalations
        if screen is not None:
            screen.report_offline(reason)

    async def action_quit(self) -> None:
        self.exit(0)
