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

Across a wait for the network (no clip prefetched: the screen says "waiting for the next clip…")
there is nothing for keys to act on. The screen that knows it is waiting owns a `KeyHold`
(`screen.key_hold`): while it holds, the router keeps every key it does not let pass (the app's
own keys: quit, help…) instead of dispatching it, and when the screen has a clip again and
releases, the router replays the kept keys, in order, before any typed later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from textual import events
from textual.app import App
from textual.message_pump import MessagePump

log = logging.getLogger(__name__)

#: The longest one key waits for the one before it (normally well under a millisecond).
STALL_TIMEOUT_S = 1.0
#: Keys a hold keeps at most (minutes of fast typing); past it a key is refused with a bell.
HOLD_LIMIT = 4096

Dispatch = Callable[[events.Event], Awaitable[None]]


class KeyHold:
    """Keys typed while a screen has nowhere to put them, kept in typing order until it has.

    `passes(key)` names the keys that act at once even while holding (quit, help). `hold()` starts
    keeping; `release()` hands what was kept back to the router, which replays it before any key
    typed after. Keys kept but not yet replayed keep later keys behind them."""

    def __init__(self, passes: Callable[[events.Key], bool], *, limit: int = HOLD_LIMIT) -> None:
        self._passes = passes
        self._limit = limit
        self._keys: deque[events.Key] = deque()
        self.holding = False
        #: Keys refused because the hold was full (said on screen, with a bell).
        self.refused = 0
        self._replay: Callable[[KeyHold], None] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        self.refused = 0
        if self._keys and self._replay is not None:
            self._replay(self)

    def wants(self, key: events.Key) -> bool:
        return (self.holding or bool(self._keys)) and not self._passes(key)

    def keep(self, key: events.Key, replay: Callable[[KeyHold], None]) -> bool:
        """Keep `key` (False: the hold is full). `replay` is how to hand kept keys back."""
        self._replay = replay
        if len(self._keys) >= self._limit:
            self.refused += 1
            return False
        self._keys.append(events.Key(key.key, key.character))
        return True

    def next_key(self) -> events.Key | None:
        """The next kept key to replay; None when empty or holding again (the replay of a submit
        may have left the screen waiting once more: the rest stays kept)."""
        if self.holding or not self._keys:
            return None
        return self._keys.popleft()


class KeyRouter:
    """Routes the App's keys one at a time; `AnnotatorApp.on_event` hands it every typed key."""

    def __init__(self, app: App[Any], *, timeout: float = STALL_TIMEOUT_S) -> None:
        self._app = app
        self._timeout = timeout
        self._dispatch: Dispatch | None = None

    async def route(self, key: events.Key, dispatch: Dispatch) -> None:
        """Dispatch `key` (Textual's own routing: priority bindings, else the focused widget),
        then wait until it has been handled before the App reads the next one. While the screen
        holds keys (`KeyHold`), keep it there instead."""
        self._dispatch = dispatch
        hold = getattr(self._app.screen, "key_hold", None)
        if isinstance(hold, KeyHold) and hold.wants(key):
            if not hold.keep(key, self._replay_later):
                self._app.bell()
            return
        await self._route_now(key, dispatch)

    def _replay_later(self, hold: KeyHold) -> None:
        # Behind whatever the App is doing now (the release runs inside a handler), ahead of
        # keys it reads later: those wait in its queue while this callback runs.
        self._app.call_later(self._replay, hold)

    async def _replay(self, hold: KeyHold) -> None:
        dispatch = self._dispatch
        if dispatch is None:
            return
        while (key := hold.next_key()) is not None:
            if self._app._exit:
                return
            await self._route_now(key, dispatch)

    async def _route_now(self, key: events.Key, dispatch: Dispatch) -> None:
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
