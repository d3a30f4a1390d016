"""The App: thin. It holds the services, the key bindings and the one place worker errors land.

Everything the annotator does happens on `AnnotateScreen`; the App only installs the keymap, opens
that screen, routes typed keys in order (annotator/typeahead.py), guards the minimum terminal size
and turns exceptions from thread workers into banners and notifications (OfflineError → keep
working from what is prefetched; Unauthorized → a message naming the token setting).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from annotator.screens.annotate import AnnotateScreen
from annotator.screens.commands import ActionCommands
from annotator.screens.too_small import TooSmallScreen, too_small
from annotator.services import EventRelay, Services
from annotator.typeahead import KeyRouter

log = logging.getLogger(__name__)


class AnnotatorApp(App[int]):
    TITLE = "annotator"
    # Only the annotator's actions (quit among them): none of Textual's own (theme, maximize,
    # screenshot — which fails here) in a tool used all day by keys.
    COMMANDS: ClassVar = {ActionCommands}
    BINDINGS: ClassVar[list[BindingType]] = []
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._too_small: TooSmallScreen | None = None
        self._size_guard = False  # the first Resize comes before the annotate screen exists
        self._keys = KeyRouter(self)
        self.set_keymap(services.keymap.bindings)

    async def on_mount(self) -> None:
        # Awaited, so the size guard below lands on top of it rather than under it.
        await self.push_screen(AnnotateScreen(self.services))
        self._size_guard = True
        for notice in self.services.startup_notices:
            self.notify(notice, severity="warning", timeout=10)
        self._check_size()

    # -- type-ahead: each key acts in typing order (annotator/typeahead.py)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            await self._keys.route(event, super().on_event)
            return
        await super().on_event(event)

    # -- minimum size

    def on_resize(self, event: events.Resize) -> None:
        # The event's size: this handler runs before App._on_resize stores it in `self.size`.
        self._check_size(event.size)

    def _check_size(self, size: Size | None = None) -> None:
        if not self._size_guard:
            return
        size = size or self.size
        small = too_small(size.width, size.height)
        if small and self._too_small is not None:
            self._too_small.show_size(size)
        if small and self._too_small is None:
            self._too_small = TooSmallScreen(size)
            self.push_screen(self._too_small)
        elif not small and self._too_small is not None:
            screen, self._too_small = self._too_small, None
            if screen in self.screen_stack:
                if self.screen is screen:
                    self.pop_screen()
                else:
                    self.screen_stack.remove(screen)  # pragma: no cover - defensive

    # -- notifications are plain text

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        # Every toast (Widget.notify lands here too) shows its words as written: a transcript's
        # "[bark]", a tag list, a file name or a server's message is never read as markup.
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # -- the one place errors from workers are handled

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.handle_error(event.worker.error, what=event.worker.name)

    def handle_error(self, error: BaseException, *, what: str = "") -> None:
        from api.client import Forbidden, OfflineError, ServerError, Unauthorized

        screen = self._annotate_screen()
        if isinstance(error, OfflineError | ServerError):
            if screen is not None and isinstance(error, OfflineError):
                screen.report_offline(str(error))
            return
        if isinstance(error, Unauthorized):
            self.notify(
                "The server refused your token. Set ANNOTATOR_TOKEN (or token in config.toml) "
                "to a valid token and restart.",
                title="Not signed in",
                severity="error",
                timeout=30,
            )
            return
        if isinstance(error, Forbidden):
            self.notify(str(error), title="Not allowed", severity="error", timeout=10)
            return
        log.error("%s failed", what or "worker", exc_info=error)
        self.notify(f"{type(error).__name__}: {error}", title=what or "Error", severity="error")

    def _annotate_screen(self) -> AnnotateScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, AnnotateScreen):
                return screen
        return None

    # -- command palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # ActionCommands holds every action, quit included; nothing is added here.
        yield from ()

    async def action_quit(self) -> None:
        # Textual's own quit binding lands here: keep the last keystrokes of the draft first.
        screen = self._annotate_screen()
        if screen is not None:
            screen.flush()
        self.exit(0)


__all__ = ["AnnotatorApp", "Binding", "EventRelay", "Services"]
