"""What every app of the annotator shares (the annotator's and the supervisor's console): the
keymap installed with its binding ids, keys routed one at a time in typing order
(annotator/typeahead.py), the minimum-size guard, the command palette, and the one place
exceptions from thread workers land.

A subclass pushes its first screen in `on_mount` and then calls `start_size_guard()`; it says
what "the server is unreachable" means on its screens in `report_offline`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from textual import events
from textual.app import App, SystemCommand
from textual.geometry import Size
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from annotator.keymap import ResolvedKeymap
from annotator.screens.too_small import TooSmallScreen, too_small
from annotator.typeahead import KeyRouter
from api.text_safety import for_terminal

log = logging.getLogger(__name__)


class BaseApp(App[int]):
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, keymap: ResolvedKeymap) -> None:
        super().__init__()
        self._too_small: TooSmallScreen | None = None
        self._size_guard = False  # the first Resize comes before the first screen exists
        self._keys = KeyRouter(self)
        self.set_keymap(keymap.bindings)

    def start_size_guard(self) -> None:
        self._size_guard = True
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
        # "[bark]", a name or a server's message is never read as markup, and since they quote
        # servers, exceptions and files, no character reaches the terminal as a control.
        super().notify(
            for_terminal(message, keep_newlines=True),
            title=for_terminal(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # -- the one place errors from workers are handled

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.handle_error(event.worker.error, what=event.worker.name)

    def report_offline(self, reason: str) -> None:
        """A worker found no server (OfflineError): the subclass says so on its screens."""

    def handle_error(self, error: BaseException, *, what: str = "") -> None:
        from api.client import Forbidden, OfflineError, ServerError, Unauthorized

        if isinstance(error, OfflineError | ServerError):
            if isinstance(error, OfflineError):
                self.report_offline(str(error))
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

    # -- command palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Only the app's own actions (ActionCommands holds them, quit included): none of
        # Textual's (theme, maximize, screenshot — which fails here) in a tool used by keys.
        yield from ()
