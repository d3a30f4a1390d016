"""Hold-to-play on the pedal keymap: ask the terminal for key releases of the play pedal.

Textual 8.2.x pushes the kitty keyboard protocol with flags 1 | 8 | 16 (disambiguate, all keys as
escape codes, associated text) and never 2 ("report event types"), and its `events.Key` has no
press/release field. Its parser cannot even read an event type: `CSI 21;1:3~` (F10 released)
reaches `int("1:3")` in `XTermParser._parse_extended_key` and the ValueError kills the input
thread. So this module, used only when the pedal keymap is active on a real Linux terminal:

- `HoldDriver.start_application_mode` adds flag 2 to the entry Textual pushed (`CSI = 2 ; 2 u`,
  "set these bits": Textual's own pop on exit, `CSI < u`, still restores the terminal) and asks
  `CSI ? u`. A terminal speaking the protocol answers `CSI ? flags u`; one that does not says
  nothing, and nothing changes (the pedal toggles).
- `HoldParser` reads every sequence before Textual does. The flags answer becomes a
  `KeyReleaseSupport` message. Once the answer has bit 2: the play key's press becomes
  `PlayPedal(down=True)` and its release `PlayPedal(down=False)`; its repeats (`:2`) are dropped
  (a held pedal must not restart anything). For every other key, a release is dropped (it never
  reaches a binding as a press) and a repeat is handed to Textual as the plain press it is in any
  terminal (holding Backspace keeps deleting). Everything else is Textual's own parsing.

The Textual privates this depends on (`tests/test_pedal_driver.py` fails when an upgrade changes
them): `LinuxDriver.run_input_thread` builds its parser as the module global `XTermParser(debug)`
(rebound here for that one function, so upstream's input loop is kept, not copied);
`XTermParser._sequence_to_key_events(sequence, alt)` is asked about every sequence read so far and
whatever it yields is passed on unless its `.key` is `Keys.Ignore`, a non-empty answer ending the
sequence; `LinuxDriver.start_application_mode` pushes the kitty flags (unless
`constants.DISABLE_KITTY_KEY`) and `stop_application_mode` pops them.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual import constants, events
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.keys import Keys
from textual.message import Message

if TYPE_CHECKING:
    from textual.driver import Driver

__all__ = [
    "REPORT_EVENT_TYPES",
    "HoldDriver",
    "HoldParser",
    "KeyReleaseSupport",
    "PlayPedal",
    "hold_driver_class",
]

REPORT_EVENT_TYPES = 0b10  # the kitty protocol's "report event types" flag
_ADD_EVENT_TYPES = f"\x1b[={REPORT_EVENT_TYPES};2u"  # mode 2: set these bits, keep the others
_QUERY_FLAGS = "\x1b[?u"

_FLAGS_ANSWER = re.compile(r"\x1b\[\?(\d+)u")
# CSI key ; modifiers : event-type [; text] final — the only kitty form that carries an event type.
_WITH_EVENT_TYPE = re.compile(r"\x1b\[([\d:]*);(\d*):([123])(;[\d:]*)?([u~ABCDEFHPQRS])")
_PRESS, _REPEAT, _RELEASE = "1", "2", "3"


class _FromParser(Message):
    """A message the parser hands on in place of a key. XTermParser passes on whatever
    `_sequence_to_key_events` yields unless its `.key` is `Keys.Ignore`, so it has a `key`."""

    key = ""


class KeyReleaseSupport(_FromParser):
    """The terminal's answer to `CSI ? u`: the kitty flags now in force."""

    def __init__(self, flags: int) -> None:
        super().__init__()
        self.flags = flags

    @property
    def releases(self) -> bool:
        return bool(self.flags & REPORT_EVENT_TYPES)


class PlayPedal(_FromParser):
    """The play pedal went down (held: play) or came up (let go: pause)."""

    def __init__(self, down: bool) -> None:
        super().__init__()
        self.down = down


def _without_event_type(match: re.Match[str]) -> str:
    """The same key as a plain press: `CSI 97;1:2;97u` → `CSI 97;;97u`, `CSI 21;1:3~` →
    `CSI 21~` (the modifier 1 means none; Textual reads an empty field the same way)."""
    code, modifiers, _event, text, final = match.groups()
    modifiers = "" if modifiers == "1" else modifiers
    fields = [code, modifiers, (text or "")[1:]]
    while len(fields) > 1 and fields[-1] == "":
        fields.pop()
    return f"\x1b[{';'.join(fields)}{final}"


class HoldParser(XTermParser):
    """Textual's parser, plus the kitty protocol's event types for one key (module docstring)."""

    def __init__(self, debug: bool = False, *, hold_key: str) -> None:
        self.hold_key = hold_key
        self.holding = False  # the terminal said it reports releases
        super().__init__(debug)

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        if sequence.startswith("\x1b[") and sequence[-1:] in "u~ABCDEFHPQRS":
            handled = self._kitty(sequence)
            if handled is not None:
                return handled
        return super()._sequence_to_key_events(sequence, alt)

    def _kitty(self, sequence: str) -> list[events.Key] | None:
        if answer := _FLAGS_ANSWER.fullmatch(sequence):
            support = KeyReleaseSupport(int(answer.group(1)))
            self.holding = support.releases
            return [support]  # type: ignore[list-item]  # a `_FromParser`, see there
        typed = _WITH_EVENT_TYPE.fullmatch(sequence)
        press = _without_event_type(typed) if typed else sequence
        keys = list(super()._sequence_to_key_events(press))
        event = typed.group(3) if typed else _PRESS
        if not keys:  # an event type never reaches Textual's parser (it would raise)
            return [events.Key(Keys.Ignore, sequence)] if typed else None
        if len(keys) == 1 and keys[0].key == self.hold_key and self.holding:
            if event == _REPEAT:
                return [events.Key(Keys.Ignore, sequence)]
            return [PlayPedal(down=event == _PRESS)]  # type: ignore[list-item]
        if event == _RELEASE:
            return [events.Key(Keys.Ignore, sequence)]
        return keys


class HoldDriver(LinuxDriver):
    """LinuxDriver that asks for key releases and reads them with `HoldParser`."""

    hold_key: ClassVar[str] = ""

    def start_application_mode(self) -> None:
        super().start_application_mode()  # type: ignore[no-untyped-call]  # untyped upstream
        if not constants.DISABLE_KITTY_KEY:
            self.write(_ADD_EVENT_TYPES + _QUERY_FLAGS)
            self.flush()


def _parser_factory(hold_key: str) -> type[XTermParser]:
    class _Parser(HoldParser):
        def __init__(self, debug: bool = False) -> None:
            super().__init__(debug, hold_key=hold_key)

    return _Parser


def hold_driver_class(hold_key: str, current: type[Driver]) -> type[Driver]:
    """The driver to run with: `current` unless it is Textual's own LinuxDriver and the kitty
    protocol is on, then a HoldDriver whose input thread parses with HoldParser for `hold_key`."""
    if current is not LinuxDriver or constants.DISABLE_KITTY_KEY or not hold_key:
        return current
    upstream = LinuxDriver.run_input_thread
    scope = {**upstream.__globals__, "XTermParser": _parser_factory(hold_key)}
    run_input_thread = types.FunctionType(
        upstream.__code__, scope, upstream.__name__, upstream.__defaults__, upstream.__closure__
    )
    return type(
        "HoldDriver",
        (HoldDriver,),
        {"hold_key": hold_key, "run_input_thread": run_input_thread},
    )
