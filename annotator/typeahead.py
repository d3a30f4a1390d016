"""Type-ahead: every key acts in the order it was typed, across clip changes and focus moves.

The guarantee: keys typed before submit (or skip, undo, a tag, a focus key…) are in the form the
action sees, and keys typed after it land where the action left things: in the next clip's
transcript, the field it focused, the dialog it opened. A fast typist, or an SSH link that
delivers keys in bunches, gets exactly what one key at a time would give.

Why it needs an owner: Textual reads a burst of keys into the App's queue and routes each to the
widget focused at that moment, where it waits in that widget's own queue. A priority binding
(submit, a tag, ctrl+l) runs in the App as soon as its key is read, ahead of keys still queued
in the widget; keys read after it may be routed before it has moved the focus or shown the next
clip. `KeyRouter` therefore lets one key through at a time: the next key is not routed until the
widget it went to, and its screen, have handled everything queued before it (an
`events.Callback` posted behind the key comes back). Priority actions then run after every key
typed before them, and keys after them see their result.

This relies on the parts that handle keys doing so while the key is handled, not in a message
posted behind it: the editing widgets run their own bindings inline (widgets/inline_bindings.py),
the intent filter picks on Enter and digits directly, and modal screens bind their one-key
choices as priority bindings.

A widget that never answers (removed mid-flight, the app closing) holds the keys for at most
`STALL_TIMEOUT_S`: input never freezes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from textual import events
from textual.app import App
from textual.message_pump import MessagePump

log = logging.getLogger(__name__)

#: The longest one key waits for the one before it (normally well under a millisecond).
STALL_TIMEOUT_S = 1.0


class KeyRouter:
    """Routes the App's keys one at a time; `AnnotatorApp.on_event` hands it every typed key."""

    def __init__(self, app: App[Any], *, timeout: float = STALL_TIMEOUT_S) -> None:
        self._app = app
        self._timeout = timeout

    async def route(
        self, key: events.Key, dispatch: Callable[[events.Event], Awaitable[None]]
    ) -> None:
        """Dispatch `key` (Textual's own routing: priority bindings, else the focused widget),
        then wait until it has been handled before the App reads the next one."""
        await dispatch(key)
        app = self._app
        if app._exit:
            return
        target: MessagePump = app.focused or app.screen
        await self._drained(target)
        screen = app.screen
        if screen is not target:
            await self._drained(screen)

    async def _drained(self, pump: MessagePump) -> None:
        """Wait until `pump` has handled everything posted to it so far."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def answer() -> None:
            if not done.done():
                done.set_result(None)

        if not pump.call_later(answer):
            return  # closing: nothing more will be handled there
        try:
            await asyncio.wait_for(done, self._timeout)
        except TimeoutError:
            log.warning("a key waited %.1f s for %r: routing the next one", self._timeout, pump)
