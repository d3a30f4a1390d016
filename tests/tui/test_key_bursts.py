"""Keys that reach the terminal bunched together (a fast typist, an SSH link) are applied in the
order they were typed: the real `annotator demo` in tmux, the bursts of issue 16.

Each tmux `send-keys` below is one write to the pty, so Textual reads a Backspace in the same
read as the keys after it: the case where bound editing keys used to land after the characters
typed behind them (Textualize/textual#6605).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fixtures.server import LiveServer
from tests.tui.tmux import ANNOTATOR, Tmux, client_env, start_demo, tmux, wait_for
from widgets.transcript import DEFAULT_PLACEHOLDER

__all__ = ["tmux"]  # the fixture

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

ROUNDS = 3


def transcript_line(screen: str) -> str:
    """The transcript editor's first line as drawn (inside its ▊ … ▎ border); "" when empty."""
    for line in screen.splitlines():
        if line.startswith("▊") and not line.startswith(("▊▔", "▊▁")):
            text = line.strip("▊▎ \n")
            return "" if text == DEFAULT_PLACEHOLDER else text
    return ""


def filter_line(screen: str) -> str:
    """The intent filter as drawn: the line under "intent: …"."""
    lines = screen.splitlines()
    for n, line in enumerate(lines[:-1]):
        if line.startswith(" intent: "):
            return re.split(r"\s{3,}", lines[n + 1].strip())[0]  # the flags column ends it
    return ""


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
        clear, read = ("S-F11",), transcript_line
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
            got.append((read(after_everything_sent(tmux)), expected))
    assert [g for g, _ in got] == [e for _, e in got], got


# ---------------------------------------------------------------- random bursts, real server

#: tmux key names the burst draws from: letters, the editing keys, and tag and flag keys (flags
#: that open the escalation note are left out: they move the focus by design). ";" is left out:
#: tmux reads a lone ";" as a command separator.
EDITING = ["BSpace", "DC", "Left", "Right", "Up", "Down", "Home", "End", "C-w", "Space"]
#: The tags and flags are the default keymap's F-keys: in a terminal without the kitty protocol
#: (tmux 3.3a) an alt key is ESC + letter, which Textual can only settle by a timeout, and on a
#: loaded machine an escape sequence read before that timeout turns it into "^" + the letter
#: (issue 14 item 14, tests/tui/test_alt_keys.py, notes/keys.md) — which is why the default
#: keymap moved them to F-keys; an F-key is a whole sequence.
TAGS = ["S-F1", "S-F2", "S-F4"]  # [noise] [music] [laughter]
FLAGS = ["C-F5", "C-F6", "C-F9", "C-F10"]  # pii minor media_playback unintelligible
LETTERS = list("abcdefghij")
SLOW_S = 0.06  # the reference: one key at a time
HEADER = re.compile(r"#\d+\s+clip\s+(\S+)")
HELP = "Esc closes"  # in the help overlay's title

Burst = list[tuple[str, int]]  # (tmux key, milliseconds before the next key; 0: same write)


def _key() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(LETTERS), st.sampled_from(EDITING), st.sampled_from(TAGS + FLAGS)
    )


def _burst(min_size: int, max_size: int, keys: st.SearchStrategy[str]) -> st.SearchStrategy[Burst]:
    return st.lists(st.tuples(keys, st.integers(0, 20)), min_size=min_size, max_size=max_size)


def send_burst(tmux: Tmux, burst: Burst, *, slow: bool) -> None:
    """Send `burst`: keys with a 0 ms gap go in one tmux command, as one write to the pty."""
    group: list[str] = []
    for key, gap_ms in burst:
        group.append(key)
        pause = SLOW_S if slow else gap_ms / 1000
        if pause > 0:
            tmux.send(*group)
            group = []
            time.sleep(pause)
    if group:
        tmux.send(*group)


def shown_clip(screen: str) -> str | None:
    match = HEADER.search(screen)
    return match.group(1) if match else None


def after_everything_sent(tmux: Tmux) -> str:
    """The screen once every key sent so far has been handled: F1 goes behind them (keys act in
    the order typed), so when the help shows and Escape has closed it, they all have acted."""
    tmux.send("F1")
    wait_for(lambda: HELP in tmux.screen(), "the help overlay behind the burst", 20, tmux)
    tmux.send("Escape")

    def closed() -> bool:
        # The overlay covers the intent line; a capture taken mid-redraw may lack its title.
        screen = tmux.screen()
        return HELP not in screen and any(
            line.startswith(" intent: ") for line in screen.split("\n")
        )

    wait_for(closed, "the help overlay to close", 20, tmux)
    return tmux.screen()


def prepare(tmux: Tmux) -> str:
    """An empty transcript with focus in it and an intent picked; returns the clip shown (the
    first 8 characters of its id, as the header shows it)."""
    tmux.keys("C-l")
    tmux.text("alarmset")
    tmux.keys("Enter")
    tmux.keys("C-t")
    tmux.keys("S-F11")
    wait_for(lambda: transcript_line(tmux.screen()) == "", "an empty transcript", 10, tmux)
    wait_for(lambda: "intent: alarm_set" in tmux.screen(), "the intent picked", 10, tmux)
    clip = shown_clip(tmux.screen())
    assert clip is not None
    return clip


def run(tmux: Tmux, server: LiveServer, part1: Burst, part2: Burst, *, slow: bool) -> object:
    """Type part1, submit, type part2; what the server received and what the screen shows."""
    clip = prepare(tmux)
    send_burst(tmux, [*part1, ("C-s", 0), *part2], slow=slow)
    screen = after_everything_sent(tmux)
    if shown_clip(screen) == clip:  # the form refused (a lint error): both runs must agree
        observed = ("refused", transcript_line(screen))
        tmux.keys("S-F11")
        tmux.text("ok")
        tmux.keys("C-s")
        wait_for(lambda: shown_clip(tmux.screen()) != clip, "the next clip", 10, tmux)
        return observed
    rows: list[dict[str, Any]] = []

    def arrived() -> bool:
        rows[:] = [r for r in export_rows(server) if r["clip_id"].startswith(clip)]
        return bool(rows)

    wait_for(arrived, "the submission on the server", 15, tmux)
    (row,) = rows
    return ("submitted", row["transcript"], sorted(row["flags"]), transcript_line(screen))


def export_rows(server: LiveServer) -> list[dict[str, Any]]:
    with server.client(server.admin_token) as http:
        resp = http.get("/v1/export")
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


EXAMPLES = 10


@pytest.fixture
def annotator_pane(
    tmux: Tmux, live_server: LiveServer, test_wavs: Callable[..., list[Path]], tmp_path: Path
) -> Iterator[Tmux]:
    live_server.ingest(test_wavs(EXAMPLES * 4 + 10))
    # The token reaches the pane through the environment, never an argv.
    env = client_env(live_server.url, live_server.annotator_token, tmp_path / "client-home")
    tmux.env = env
    tmux.run(
        "new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40",
        f"exec {shlex.quote(str(ANNOTATOR))} --audio none",
    )  # fmt: skip
    wait_for(lambda: shown_clip(tmux.screen()) is not None, "the first clip", 30, tmux)
    tmux.keys("S-F1", "C-F5")  # the tag and flag keys are live
    wait_for(lambda: transcript_line(tmux.screen()) == "[noise]", "shift+F1's tag", 10, tmux)
    wait_for(lambda: "● pii" in tmux.screen(), "ctrl+F5's flag", 10, tmux)
    tmux.keys("C-F5")
    yield tmux


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Each example spends real clips on a real server: no shrinking (it would run out of them);
    # a failure prints the example as drawn.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(part1=_burst(4, 24, _key()), part2=_burst(0, 6, st.sampled_from([*LETTERS, "Space"])))
def test_a_random_burst_submits_what_the_same_keys_typed_slowly_submit(
    annotator_pane: Tmux, live_server: LiveServer, part1: Burst, part2: Burst
) -> None:
    """Keys bunched 0–20 ms apart through a real pty make the same submission (transcript and
    flags) as the same keys one at a time, and the keys typed after submit are on the next clip
    the same way."""
    fast = run(annotator_pane, live_server, part1, part2, slow=False)
    slow = run(annotator_pane, live_server, part1, part2, slow=True)
    assert fast == slow, f"{part1=} {part2=}\nfast: {fast}\nslow: {slow}"
