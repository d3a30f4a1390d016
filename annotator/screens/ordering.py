"""Keep form actions in the order their keys were typed.

Submit, clear, tags and flags are priority bindings: the App runs them the moment their key
arrives, while keys typed just before may still wait in the focused widget's queue (a fast
"weather⏎ ctrl+s" while the intent list re-ranks), and keys typed just after would be routed
before the action has acted. An ordered action therefore (1) asks the App to hold incoming keys,
(2) sends a barrier message through the focused widget's queue, which bubbles back to the screen
only after everything queued before it, (3) acts, and (4) lets the App replay the held keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from textual import on
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget


@runtime_checkable
class KeyGate(Protocol):
    """What the App offers (AnnotatorApp.hold_keys / release_keys)."""

    def hold_keys(self) -> None: ...
    def release_keys(self) -> None: ...


class Settle(Message):
    """The barrier. `rounds` > 1 sends it through again, for keys whose handling posts further
    messages (Enter → Submitted → Picked)."""

    def __init__(self, rounds: int, then: Callable[[], None]) -> None:
        super().__init__()
        self.rounds = rounds
        self.then = then


class OrderedActions(Screen[None]):
    """Screen base with `ordered(action)`."""

    def settle_rounds(self, focused: Widget) -> int:
        """How many barrier rounds the focused widget needs; override per form."""
        return 1

    def ordered(self, action: Callable[[], None]) -> None:
        gate = self.app if isinstance(self.app, KeyGate) else None
        if gate is not None:
            gate.hold_keys()

        def run() -> None:
            try:
                action()
            finally:
                if gate is not None:
                    gate.release_keys()

        focused = self.focused
        if focused is None:
            run()
            return
        focused.post_message(Settle(self.settle_rounds(focused), run))

    @on(Settle)
    def _settled(self, event: Settle) -> None:
        event.stop()
        focused = self.focused
        if event.rounds > 1 and focused is not None:
            focused.post_message(Settle(event.rounds - 1, event.then))
            return
        event.then()
