"""Hold-to-play on the pedal keymap (issue 14 item 8), with the real `annotator demo`.

In a pseudo-terminal that speaks the kitty keyboard protocol (tests/tui/kitty_pty.py: it keeps
the flag stack, answers `CSI ? u`, and sends kitty's bytes for press / repeat / release): the
play pedal (f10) plays while held and pauses when let go, its repeats change nothing, releases
of other keys never act as presses and held letters repeat as in any editor. In tmux (no kitty
protocol) the pedal toggles and the screen says so. `--audio none`: the player bar's ▶ / ‖ and
its clock are the player's state (annotator/audio/null_player.py keeps the clock of a real one).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual import events

from annotator.app import AnnotatorApp
from annotator.keymap import load_keymap
from annotator.pedal_driver import HoldDriver, KeyReleaseSupport, PlayPedal
from tests.tui.fakes import FrozenPlayer, make_app, ready_clip
from tests.tui.helpers import wait_until
from tests.tui.kitty_pty import KittyPty
from tests.tui.test_key_bursts import transcript_line
from tests.tui.tmux import ANNOTATOR, Tmux, start_demo, tmux, wait_for

__all__ = ["tmux"]  # the fixture


_BAR = re.compile(r"([▶‖]) (\d+:\d\d\.\d) / (\d+:\d\d\.\d)")


def bar(screen: str) -> tuple[str, str]:
    """(▶ or ‖, the playhead's clock) from the player bar."""
    found = _BAR.search(screen)
    assert found is not None, screen
    return found.group(1), found.group(2)


def toasts(screen: str) -> str:
    """The notifications' words, joined across the lines they wrap over."""
    parts = [
        re.split(r"\s{2,}", line.split("▌ ", 1)[1])[0]
        for line in screen.splitlines()
        if "▌ " in line
    ]
    return " ".join(p.strip() for p in parts)


def state(screen: str) -> str:
    return bar(screen)[0] if _BAR.search(screen) else ""


async def test_an_answer_before_the_screen_and_the_pedal_messages(tmp_path: Path) -> None:
    # The terminal may answer before the annotate screen is mounted: the App keeps the answer.
    fake = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    app = AnnotatorApp(replace(fake.services, keymap=load_keymap("pedal")))
    assert issubclass(app.driver_class, HoldDriver)  # what a real terminal would run
    app.on_key_release_support(KeyReleaseSupport(27))
    player = app.services.player
    assert isinstance(player, FrozenPlayer)

    def notes() -> list[str]:
        return [str(n.message) for n in app._notifications]

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: any("Hold the play pedal (f10)" in n for n in notes()))
        player.pause()
        app.post_message(PlayPedal(down=True))
        await wait_until(pilot, lambda: player.playing)
        app.post_message(PlayPedal(down=False))
        await wait_until(pilot, lambda: not player.playing)
        app.post_message(PlayPedal(down=True))
        await wait_until(pilot, lambda: player.playing)
        app.post_message(events.AppBlur())  # no release will come: counts as let go
        await wait_until(pilot, lambda: not player.playing)
        # A help screen on top: the pedal does not start playback (f10 would not either).
        await pilot.press("f1")
        app.post_message(PlayPedal(down=True))
        await pilot.pause(0.2)
        assert not player.playing
        assert sum("play pedal" in n for n in notes()) == 1  # said once


@pytest.fixture
def kitty_demo(tmp_path: Path) -> Iterator[KittyPty]:
    if not ANNOTATOR.exists():
        pytest.skip(reason=f"no console script at {ANNOTATOR}")
    state_file = tmp_path / "demo-state.json"
    env = {
        "ANNOTATOR_HOME": str(tmp_path / "home"),
        "ANNOTATOR_DEMO_STATE_FILE": str(state_file),
        "TERM": "xterm-kitty",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
    }
    argv = [str(ANNOTATOR), "demo", "--audio", "none", "--keymap", "pedal", "--clips", "3"]
    term = KittyPty(argv, env)
    try:
        term.wait_for(lambda s: "#1  clip" in s, "the first clip", timeout=90)
        assert json.loads(state_file.read_text())["url"]
        yield term
    finally:
        term.close()


def held(term: KittyPty, seconds: float, *, repeats: bool) -> None:
    """Keep the pedal down for `seconds`, with the terminal's auto-repeat (~30/s) if asked."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.035)
        if repeats:
            term.key("f10", "repeat")


@pytest.mark.slow
def test_the_play_pedal_plays_while_held_and_pauses_when_let_go(kitty_demo: KittyPty) -> None:
    term = kitty_demo
    term.wait_for(
        lambda s: "Hold the play pedal (f10) to play; let go to pause" in toasts(s), "the notice"
    )
    assert term.flags & 2, "the app asked for event types"
    assert term.queries == 1
    # A known start: f4 replays from the top; letting the pedal go pauses it.
    term.tap("f4")
    term.wait_for(lambda s: state(s) == "▶", "replaying")
    term.tap("f10")
    term.wait_for(lambda s: state(s) == "‖", "paused")
    for _ in range(2):
        before = bar(term.screen())[1]
        term.key("f10", "press")
        term.wait_for(lambda s: state(s) == "▶", "playing while held")
        held(term, 0.6, repeats=True)  # repeats (CSI 21;1:2~) must not pause or restart it
        shown = term.screen()
        assert state(shown) == "▶", shown
        assert bar(shown)[1] > before, shown  # it played on from where it was
        term.key("f10", "release")
        stopped = bar(term.wait_for(lambda s: state(s) == "‖", "paused when let go"))[1]
        time.sleep(0.4)
        assert bar(term.screen()) == ("‖", stopped), "stays paused where it was let go"

    # Held while the terminal loses focus (no release will come): counts as let go.
    term.key("f10", "press")
    term.wait_for(lambda s: state(s) == "▶", "playing while held")
    term.write("\x1b[O")  # focus out, which Textual asks the terminal to report
    term.wait_for(lambda s: state(s) == "‖", "paused on focus out")
    term.write("\x1b[I")

    # The keyboard's play key (f5) still toggles; its release is no second press.
    term.tap("f4")  # from the top again, so the clip cannot end during the check
    term.wait_for(lambda s: state(s) == "▶", "replaying")
    for want in ("‖", "▶"):
        term.tap("f5")
        term.wait_for(lambda s, w=want: state(s) == w, f"{want} after f5")
        time.sleep(0.4)
        assert state(term.screen()) == want, term.screen()

    # Typing: every letter once (its release dropped), a held letter repeats, a tag (shift+F1)
    # goes in once; nothing of the protocol shows.
    term.tap("shift+f11")
    term.wait_for(lambda s: transcript_line(s) == "", "a cleared transcript")
    term.tap("h", "i")
    term.key("x", "press")
    term.key("x", "repeat")
    term.key("x", "repeat")
    term.key("x", "release")
    term.tap("shift+f1", "o", "k")
    term.wait_for(lambda s: transcript_line(s) == "hixxx [noise]ok", "the typed text")
    time.sleep(0.3)
    shown = term.screen()
    assert transcript_line(shown) == "hixxx [noise]ok", shown
    assert "[?" not in shown and "1:3" not in shown, shown


@pytest.mark.slow
@pytest.mark.tmux
def test_without_the_kitty_protocol_the_pedal_toggles_and_says_so(
    tmux: Tmux, tmp_path: Path
) -> None:
    # tmux 3.3a ignores the kitty protocol (and the release query): Textual's own key path.
    start_demo(tmux, tmp_path, keymap="pedal")
    said = "The play pedal (f10) toggles: press it to play, press it again to pause."
    wait_for(lambda: said in toasts(tmux.screen()), "the toggle notice", 10, tmux)
    assert "this terminal does not report key releases" in toasts(tmux.screen())
    for want in ("‖", "▶", "‖"):
        tmux.keys("F10")
        wait_for(lambda w=want: state(tmux.screen()) == w, f"{want} after f10", 10, tmux)
    tmux.keys("S-F11")  # clear the demo's hint, then type
    tmux.text("ok")
    wait_for(lambda: transcript_line(tmux.screen()) == "ok", "typing", 10, tmux)
