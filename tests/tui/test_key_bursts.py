"""Keys that reach the terminal bunched together (a fast typist, an SSH link) are applied in the
order they were typed: the real `annotator demo` in tmux, the bursts of issue 16.

Each tmux `send-keys` below is one write to the pty, so Textual reads a Backspace in the same
read as the keys after it: the case where bound editing keys used to land after the characters
typed behind them (Textualize/textual#6605).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tui.tmux import Tmux, start_demo, tmux, wait_for

__all__ = ["tmux"]  # the fixture

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

ROUNDS = 3


def transcript_line(screen: str) -> str:
    """The transcript editor's first line as drawn (inside its ▊ … ▎ border)."""
    for line in screen.splitlines():
        if line.startswith("▊") and not line.startswith(("▊▔", "▊▁")):
            return line.strip("▊▎ \n")
    return ""


def filter_line(screen: str) -> str:
    """The intent filter as drawn: the line under "intent: …"."""
    lines = screen.splitlines()
    for n, line in enumerate(lines[:-1]):
        if line.startswith(" intent: "):
            return re.split(r"\s{3,}", lines[n + 1].strip())[0]  # the flags column ends it
    return ""


def settled(tmux: Tmux, read: Callable[[str], str], expected: str) -> str:
    """What the field shows once it stops changing (or as soon as it shows `expected`)."""
    deadline = time.monotonic() + 3.0
    last, since = read(tmux.screen()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read(tmux.screen())
        if now == expected:
            return now
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 0.7:
            break
    return last


#: (tmux commands sent back to back: keys and whether they are literal text, what they make
#: after "set"). " hello" in the second is no key name, so tmux sends it as text.
BURSTS: list[tuple[list[tuple[tuple[str, ...], bool]], str]] = [
    ([((" timer",), True), (("BSpace",) * 5, False), (("abc",), True)], "set abc"),
    ([((" hello", "BSpace", "X"), False)], "set hellX"),
]


@pytest.mark.parametrize("field", ["transcript", "intent filter"])
def test_bunched_backspace_is_applied_where_it_was_typed(
    tmux: Tmux, tmp_path: Path, field: str
) -> None:
    start_demo(tmux, tmp_path)
    if field == "transcript":
        clear, read = ("M-C",), transcript_line
    else:
        tmux.keys("C-l")
        clear, read = ("C-u",), filter_line
    got: list[tuple[str, str]] = []
    for _ in range(ROUNDS):
        for parts, expected in BURSTS:
            tmux.keys(*clear)
            tmux.text("set")
            wait_for(lambda: read(tmux.screen()) == "set", f"the {field} to read 'set'", 5, tmux)
            for keys, literal in parts:
                tmux.send(*keys, literal=literal)
            got.append((settled(tmux, read, expected), expected))
    assert [g for g, _ in got] == [e for _, e in got], got
