"""The App: thin. It holds the services, the key bindings and the one place worker errors land.

Everything the annotator does happens on `AnnotateScreen`; the App only installs the keymap, opens
that screen, guards the minimum terminal size and turns exceptions from thread workers into banners
and notifications (OfflineError → keep working from what is prefetched; Unauthorized → a message
naming the token setting).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from annotator.screens.annotate import AnnotateScreen
from annotator.screens.commands import ActionCommands
from annotator.screens.too_small import TooSmallScreen, too_small
from annotator.services import EventRelay, Services

log = logging.getLogger(__name__)

#: The longest keys wait behind an ordered action (normally well under a millisecond).
HOLD_TIMEOUT_S = 1.0


class _ReleaseKeys(Message):
    """Queued behind the keys held meanwhile, so they are replayed in the order they came."""


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
        #: Keys that arrived while an ordered action waited for earlier input; None: keys flow.
        self._held_keys: deque[events.Key] | None = None
        self._hold_generation = 0
        self.set_keymap(services.keymap.bindings)

    async def on_mount(self) -> None:
        # Awaited, so the size guard below lands on top of it rather than under it.
        await self.push_screen(AnnotateScreen(self.services))
        self._size_guard = True
        for notice in self.services.startup_notices:
            self.notify(notice, severity="warning", timeout=10)
        self._check_size()

    # -- type-ahead: keys after submit belong to the next clip

    def hold_keys(self) -> None:
        """Hold incoming keys until `release_keys` (see AnnotateScreen._ordered).

        A priority binding (submit, clear, a tag) runs as soon as its key arrives, while keys
        typed just before it may still sit in a widget's queue, and keys typed just after it
        would be routed before it has acted. Holding and replaying keeps the order typed."""
        if self._held_keys is None:
            self._held_keys = deque()
            self._hold_generation += 1
            generation = self._hold_generation
            # Should the barrier ever be lost (its widget removed mid-flight), never freeze input.
            self.set_timer(HOLD_TIMEOUT_S, lambda: self._hold_expired(generation))

    def _hold_expired(self, generation: int) -> None:
        if self.holding_keys and generation == self._hold_generation:
            log.warning("keys were held for %.1f s: releasing them", HOLD_TIMEOUT_S)
            self.release_keys()

    @property
    def holding_keys(self) -> bool:
        return self._held_keys is not None

    def release_keys(self) -> None:
        self.post_message(_ReleaseKeys())

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and self._held_keys is not None and not event.is_forwarded:
            self._held_keys.append(event)
            return
        await super().on_event(event)

    @on(_ReleaseKeys)
    async def _replay_keys(self) -> None:
        held, self._held_keys = self._held_keys, None
        while held:
            key = held.popleft()
            await super().on_event(events.Key(key.key, key.character))
            if self.holding_keys:  # that key was another ordered action: wait again
                self._hold_first(held)
                return

    def _hold_first(self, keys: deque[events.Key]) -> None:
        if self._held_keys is not None:
            self._held_keys.extendleft(reversed(keys))

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
