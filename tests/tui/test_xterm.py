"""Keys pressed in the middle of typing, in xterm (issue 14 item 14): the real `annotator demo`
in xterm 379 (Debian 12) on Xvfb, typed at through XTEST.

xterm has no kitty keyboard protocol. What alt does depends on two resources:
- the default (`eightBitInput: true`, `metaSendsEscape: false`): alt+letter is sent as the letter
  with its eighth bit set, so alt+n types "î" and alt+shift+p "Ð" — alt bindings never fire;
- `metaSendsEscape: true` (xterm's menu "Meta Sends Escape", what most users turn on): ESC +
  letter, garbled exactly as in tmux when an arrow or another alt key follows within ESCDELAY
  ("^xn" for alt+n Left x; notes/keys.md explains the parser).
In both, the default keymap's mid-typing keys (shift+F-key tags, ctrl+F-key flags, shift+F11
clear) are whole CSI sequences and land where they were typed. The pedal keymap's play pedal
toggles in xterm (it does not answer the release query) and says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.test_key_bursts import transcript_line
from tests.tui.test_pedal_hold import state, toasts
from tests.tui.tmux import ANNOTATOR
from tests.tui.xterm import XTerm, tools_or_skip

pytestmark = [pytest.mark.slow]

META_SENDS_ESCAPE = ["metaSendsEscape: true"]
DEFAULT: list[str] = []  # eightBitInput: true, metaSendsEscape: false


def demo_in_xterm(tmp_path: Path, resources: list[str], keymap: str = "default") -> XTerm:
    tools_or_skip()
    if not ANNOTATOR.exists():
        pytest.skip(reason=f"no console script at {ANNOTATOR}")
    env = {
        "ANNOTATOR_HOME": str(tmp_path / "home"),
        "ANNOTATOR_DEMO_STATE_FILE": str(tmp_path / "demo-state.json"),
        "PATH": os.environ.get("PATH", ""),
    }
    term = XTerm(tmp_path / "x")
    argv = [str(ANNOTATOR), "demo", "--audio", "none", "--clips", "3", "--keymap", keymap]
    try:
        term.start(argv, env, resources)
        term.wait_for(lambda s: "#1  clip" in s, "the first clip", timeout=90)
        term.focus()
    except BaseException:
        term.close()
        raise
    return term


@pytest.fixture
def xterm_default(tmp_path: Path) -> Iterator[XTerm]:
    term = demo_in_xterm(tmp_path, DEFAULT)
    yield term
    term.close()


@pytest.fixture
def xterm_meta_escape(tmp_path: Path) -> Iterator[XTerm]:
    term = demo_in_xterm(tmp_path, META_SENDS_ESCAPE, keymap="pedal")
    yield term
    term.close()


def makes(term: XTerm, keys: list[str], expected: str) -> None:
    """Clear the transcript, type `keys` back to back, and wait for `expected`."""
    term.keys("shift+F11")
    term.wait_for(lambda s: transcript_line(s) == "", "a cleared transcript", 10)
    term.keys(*keys)
    term.wait_for(lambda s: transcript_line(s) == expected, repr(expected), 10)


def the_mid_typing_keys_land_where_typed(term: XTerm) -> None:
    makes(term, ["shift+F1", "Left", "x"], "[noisex]")
    makes(term, ["shift+F1", "shift+F2", "shift+F4"], "[noise] [music] [laughter]")
    makes(
        term,
        ["shift+F5", "shift+F6", "shift+F7", "shift+F8", "shift+F9"],
        "[cough] [crosstalk] [unintelligible] [pii] [foreign]",
    )
    makes(term, ["h", "i", "shift+F2", "Home", "o", "shift+F11", "y", "o"], "yo")
    makes(
        term,
        ["shift+F1", *"abcdefghijklmnopqrstuvwxyzabcdefghijklmn"],
        "[noise]abcdefghijklmnopqrstuvwxyzabcdefghijklmn",
    )
    makes(term, ["a", "b", "ctrl+F5", "Left", "c"], "acb")  # a flag (pii) mid-word
    term.wait_for(lambda s: "● pii" in s, "the pii flag on", 10)


def test_default_xterm_f_keys_are_safe_and_alt_types_latin_1(xterm_default: XTerm) -> None:
    the_mid_typing_keys_land_where_typed(xterm_default)
    # eightBitInput: alt+n is "î" (0xEE), a character, not the [noise] alias.
    makes(xterm_default, ["h", "i", "alt+n", "t"], "hiît")


def test_meta_sends_escape_xterm_f_keys_are_safe_and_alt_garbles_as_in_tmux(
    xterm_meta_escape: XTerm,
) -> None:
    term = xterm_meta_escape
    # The pedal keymap (default keys + pedals): xterm does not answer the release query.
    term.wait_for(lambda s: "The play pedal (f10) toggles" in toasts(s), "the toggle notice", 10)
    the_mid_typing_keys_land_where_typed(term)
    makes(term, ["alt+n", "a", "b", "c"], "[noise]abc")  # letters straight after an alt key: fine
    # An arrow straight after an alt key: the alt key is read as "^" + its letter (the reason
    # tags and flags are F-keys); tests/tui/test_alt_keys.py has the same in tmux.
    makes(term, ["alt+n", "Left", "x"], "^xn")
    before = state(term.screen())
    term.keys("F10")
    term.wait_for(lambda s: state(s) not in ("", before), "f10 toggles", 10)
