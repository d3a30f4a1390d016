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
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from annotator.screens.annotate import AnnotateScreen
from annotator.screens.commands import ActionCommands
from annotator.screens.too_small import TooSmallScreen, too_small
from annotator.services import EventRelay, Services
from annotator.typeahead import KeyRouter
from api.text_safety import for_terminal

log = logging.getLogger(__name__)


class AnnotatorApp(App[int]):
    TITLE = "annotator"
    COMMANDS: ClassVar = App.COMMANDS | {ActionCommands}
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

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast (the screens' too) comes through here: their text quotes servers,
        exceptions and files, so no character of it may reach the terminal as a control."""
        super().notify(
            for_terminal(message, keep_newlines=True),
            title=for_terminal(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    # -- type-ahead: each key acts in typing order (annotator/typeahead.py)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            await self._keys.route(event, super().on_event)
            return
        await super().on_event(event)

    # -- minimum size

    def on_resize(self, event: events.Resize) -> None:
        self._check_size()

    def _check_size(self) -> None:
        if not self._size_guard:
            return
        small = too_small(self.size.width, self.size.height)
        if small and self._too_small is None:
            self._too_small = TooSmallScreen()
            self.push_screen(self._too_small)
        elif not small and self._too_small is not None:
            screen, self._too_small = self._too_small, None
            if screen in self.screen_stack:
                if self.screen is screen:
                    self.pop_screen()
                else:
                    self.screen_stack.remove(screen)  # pragma: no cover - defensive

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
        # Our own actions come from ActionCommands; keep Textual's theme/keys/quit entries.
        yield from super().get_system_commands(screen)

    async def action_quit(self) -> None:
        # Textual's own quit binding lands here: keep the last keystrokes of the draft first.
        screen = self._annotate_screen()
        if screen is not None:
            screen.flush()
        self.exit(0)


__all__ = ["AnnotatorApp", "Binding", "EventRelay", "Services"]
