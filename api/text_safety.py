"""Characters that hide, reorder or command, and keeping them out of stored text and terminals.

Two uses of one character class:

- **Refused on input** (`unsafe_character`, `check_text`): control characters (C0 including tab
  and newline — every field a person types here is one line —, DEL, C1), bidirectional overrides,
  embeddings and isolates (the "Trojan Source" characters that make `evil` display as `live`),
  zero-width characters and joiners, and the Unicode line/paragraph separators. A transcript, a
  note or a display name holding one either came from a paste that carried junk or is an attack
  on whoever reads it later (a supervisor's terminal). ZWJ/ZWNJ are also refused: the locales
  served today do not need them; a locale that does gets an allow-list here, not a blanket pass.
- **Escaped on output** (`for_terminal`, `escaping_console`): whatever reaches a terminal — a file
  name from ingest, a message from a server, an exception's text — is drawn with each such
  character as a visible `\\x1b` / `\\u202e`, so nothing printed can move the cursor, retitle
  the window, clear the screen or reorder the line. Newlines may be kept (Rich lays out lines).

No Textual here: the TUI and any supervisor view call `for_terminal` on data before drawing it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import IO, Any

from rich.console import (
    Console,
    ConsoleOptions,
    ConsoleRenderable,
    RenderableType,
    RenderHook,
    RenderResult,
)
from rich.segment import Segment

_OTHER_UNSAFE = (
    "\x7f-\x9f"  # DEL, C1 (incl. the 8-bit CSI \x9b)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u200b-\u200d\u2060-\u2064\ufeff\u180e"  # zero-width space/joiners, word joiner, BOM
    "\u2028\u2029"  # line and paragraph separators
    "\ufff9-\ufffb"  # interlinear annotation controls
)
UNSAFE = re.compile(f"[\x00-\x1f{_OTHER_UNSAFE}]")  # with C0: ESC, tab, newline, ...
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER_UNSAFE}]")


def describe(ch: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`, `U+001B (control)`."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X} (control)"


def unsafe_character(text: str) -> tuple[int, str] | None:
    """The first refused character of `text` as (index, character), or None."""
    m = UNSAFE.search(text)
    return (m.start(), m.group()) if m else None


def check_text(text: str) -> str | None:
    """Why `text` may not be stored (one sentence naming the character and where), or None."""
    found = unsafe_character(text)
    if found is None:
        return None
    at, ch = found
    return (
        f"character {describe(ch)} at position {at + 1} is not allowed: remove it "
        "(control, bidirectional and zero-width characters can hide or reorder text)"
    )


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object, *, keep_newlines: bool = False) -> str:
    """`str(text)` with every refused character drawn as a visible escape (`\\x1b`, `\\u202e`)."""
    pattern = _UNSAFE_BUT_NEWLINE if keep_newlines else UNSAFE
    return pattern.sub(_escape, str(text))


class _Escaped:
    """A renderable drawn as `inner` is, with the text of every segment escaped (styles kept)."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for seg in console.render(self.inner, options):
            if seg.control:  # cursor moves Rich itself asked for (progress bars): not text
                yield seg
            else:
                yield Segment(for_terminal(seg.text, keep_newlines=True), seg.style)


class _EscapeHook(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Escaped(r) for r in renderables]


def escaping_console(*, stderr: bool = False, file: IO[str] | None = None, **kw: Any) -> Console:
    """A Rich console that can print anything: markup still styles, but no character of the
    printed text can reach the terminal as a control (see the module docstring)."""
    console = Console(stderr=stderr, file=file, **kw)
    console.push_render_hook(_EscapeHook())
    return console
