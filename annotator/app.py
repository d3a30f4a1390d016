"""The App: thin. It holds the services, the key bindings and the one place worker errors land.

Everything the annotator does happens on `AnnotateScreen`; the App only installs the keymap, opens
that screen, routes typed keys in order (annotator/typeahead.py), guards the minimum terminal size
and turns exceptions from thread workers into banners and notifications (OfflineError → keep
working from what is prefetched; Unauthorized → a message naming the token setting). All but the
first two are `annotator/base_app.py`'s, shared with the supervisor's console.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType

from annotator.base_app import BaseApp
from annotator.pedal import PedalHoldApp, hold_key
from annotator.screens.annotate import AnnotateScreen
from annotator.screens.commands import ActionCommands
from annotator.services import EventRelay, Services
from annotator.startup_gc import release as release_startup_gc

log = logging.getLogger(__name__)


class AnnotatorApp(PedalHoldApp, BaseApp):
    TITLE = "annotator"
    # Only the annotator's actions (quit among them): none of Textual's own (theme, maximize,
    # screenshot — which fails here) in a tool used all day by keys.
    COMMANDS: ClassVar = {ActionCommands}
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, services: Services) -> None:
        super().__init__(services.keymap)
        self.services = services
        if key := hold_key(services.keymap):  # the pedal keymap: ask the terminal for releases
            from annotator.pedal_driver import hold_driver_class

            self.driver_class = hold_driver_class(key, self.driver_class)

    async def on_mount(self) -> None:
        # Awaited, so the size guard below lands on top of it rather than under it.
        await self.push_screen(AnnotateScreen(self.services))
        # The first clip is playing (or awaited) and the screen composed: the collector, held
        # off since `annotator` started, runs again once this first frame is drawn.
        self.call_after_refresh(release_startup_gc)
        for notice in self.services.startup_notices:
            self.notify(notice, severity="warning", timeout=10)
        self.start_size_guard()
        self._tell_supervisors()

    @work(thread=True, group="role", exit_on_error=False)
    def _tell_supervisors(self) -> None:
        from annotator.supervise.hint import supervisor_hint

        hint = supervisor_hint(self.services.client_factory)
        if hint is not None:
            self.call_from_thread(self.notify, hint, title="Supervisor", timeout=30)

    def report_offline(self, reason: str) -> None:
        screen = self._annotate_screen()
        if screen is not None:
            screen.report_offline(reason)

    def _annotate_screen(self) -> AnnotateScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, AnnotateScreen):
                return screen
        return None

    async def action_quit(self) -> None:
        # Textual's own quit binding lands here: keep the last keystrokes of the draft first.
        screen = self._annotate_screen()
        if screen is not None:
            screen.flush()
        self.exit(0)


__all__ = ["AnnotatorApp", "Binding", "EventRelay", "Services"]
