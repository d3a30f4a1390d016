"""A pseudo-terminal that speaks the kitty keyboard protocol the way kitty, foot, WezTerm and
Ghostty do, with the real command inside it.

`KittyPty` runs a command on a pty, draws its output with pyte (a VT emulator, so `screen()` is
what a user would see), keeps the protocol's flag stack (`CSI > f u` push, `CSI < n u` pop,
`CSI = f ; mode u` set), answers `CSI ? u` with `CSI ? flags u`, and sends keys as kitty's
key_encoding.c encodes them for the flags in force: with report-event-types (2) a key has press,
repeat (`…;1:2…`) and release (`…;1:3…`) events; without it only presses; with flags 0 the
legacy bytes (xterm's). `speaks_protocol=False` is a terminal that ignores all of it (xterm).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import Literal

import pyte

Event = Literal["press", "repeat", "release"]

_CONTROL = re.compile(rb"\x1b\[([>=<?])([\d;]*)u")
# kitty's numbers for the functional keys used here: (number, final) as in key_encoding.c.
_FUNCTIONAL = {
    "f1": (1, "P"),
    "f2": (1, "Q"),
    "f4": (1, "S"),
    "f5": (15, "~"),
    "f6": (17, "~"),
    "f7": (18, "~"),
    "f8": (19, "~"),
    "f9": (20, "~"),
    "f10": (21, "~"),
    "f11": (23, "~"),
    "f12": (24, "~"),
    "enter": (13, "u"),
    "backspace": (127, "u"),
    "escape": (27, "u"),
    "left": (1, "D"),
    "right": (1, "C"),
    "home": (1, "H"),
}
_LEGACY = {
    "f1": "\x1bOP",
    "f2": "\x1bOQ",
    "f4": "\x1bOS",
    "enter": "\r",
    "backspace": "\x7f",
    "escape": "\x1b",
    "left": "\x1b[D",
    "right": "\x1b[C",
    "home": "\x1b[H",
}
_MODIFIER_BITS = {"shift": 1, "alt": 2, "ctrl": 4}
_ACTION = {"press": 1, "repeat": 2, "release": 3}


def kitty_bytes(key: str, event: Event, flags: int) -> str:
    """What a kitty-protocol terminal sends for `key` ("a", "f10", "shift+f1") with `flags`."""
    *mods, name = key.split("+")
    mod_bits = sum(_MODIFIER_BITS[m] for m in mods)
    report_events, all_as_codes, with_text = flags & 2, flags & 8, flags & 16
    if event != "press" and not report_events:
        if event == "release":
            return ""
        event = "press"  # a terminal without event types repeats by pressing again
    text_key = len(name) == 1
    if text_key and not all_as_codes and not mod_bits and event != "release":
        return name
    if not flags:
        return _legacy(name, mod_bits)
    number, final = _FUNCTIONAL[name] if not text_key else (ord(name), "u")
    fields = [str(number) if number != 1 or mod_bits or event != "press" else ""]
    second = ""
    if mod_bits or event != "press":
        second = str(mod_bits + 1) + (f":{_ACTION[event]}" if event != "press" else "")
    text = str(ord(name)) if text_key and with_text and event != "release" and not mod_bits else ""
    if second or text:
        fields.append(second)
    if text:
        fields.append(text)
    return "\x1b[" + ";".join(fields) + final


def _legacy(name: str, mod_bits: int) -> str:
    if not mod_bits:
        return _LEGACY.get(name) or "\x1b[{}{}".format(*_FUNCTIONAL[name])
    number, final = _FUNCTIONAL[name]
    return f"\x1b[{number};{mod_bits + 1}{final}"


class VtScreen:
    """What a terminal shows for the bytes a program wrote to it (pyte), for tests to read."""

    def __init__(self, cols: int, rows: int) -> None:
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._stream.feed(data)

    def screen(self) -> str:
        with self._lock:
            return "\n".join(self._screen.display)

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if predicate(shown):
                return shown
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")


class KittyPty(VtScreen):
    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        cols: int = 120,
        rows: int = 40,
        speaks_protocol: bool = True,
    ) -> None:
        super().__init__(cols, rows)
        self.speaks_protocol = speaks_protocol
        self.stack: list[int] = []
        self.queries = 0
        self._tail = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execvpe(argv[0], argv, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def flags(self) -> int:
        return self.stack[-1] if self.stack else 0

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self._controls(self._tail + data)
            self._tail = data[-16:]
            self.feed(data)

    def _controls(self, data: bytes) -> None:
        if not self.speaks_protocol:
            return
        for match in _CONTROL.finditer(data):
            if match.end() <= len(self._tail):
                continue  # seen in the previous read
            kind, args = match.group(1), [int(a) if a else 0 for a in match.group(2).split(b";")]
            if kind == b">":
                self.stack.append(args[0])
            elif kind == b"<":
                del self.stack[len(self.stack) - max(1, args[0]) :]
            elif kind == b"=":
                wanted, mode = args[0], args[1] if len(args) > 1 and args[1] else 1
                current = self.stack.pop() if self.stack else 0
                new = {1: wanted, 2: current | wanted, 3: current & ~wanted}[mode]
                self.stack.append(new)
            elif kind == b"?":
                self.queries += 1
                self.write(f"\x1b[?{self.flags}u")

    def write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def key(self, key: str, event: Event = "press") -> None:
        flags = self.flags if self.speaks_protocol else 0
        data = kitty_bytes(key, event, flags)
        if data:
            self.write(data)

    def tap(self, *keys: str) -> None:
        """Press and release each key (one write per key event, as a terminal does)."""
        for key in keys:
            self.key(key, "press")
            self.key(key, "release")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)
