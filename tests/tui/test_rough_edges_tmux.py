"""Issue 14's broken items in a real terminal: the real `annotator` in tmux, a real server.

- The size check uses the size the terminal has now, after real resizes both ways.
- The command palette holds the annotator's actions and quit, none of Textual's own commands.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import LiveServer
from tests.tui.tmux import ANNOTATOR, Tmux, client_env, tmux, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.tmux]
__all__ = ["tmux"]  # the fixture

ENLARGE = "Please enlarge the terminal"


@pytest.fixture
def pane(
    tmux: Tmux, live_server: LiveServer, test_wavs: Callable[..., list[Path]], tmp_path: Path
) -> Iterator[Tmux]:
    live_server.ingest(test_wavs(4))
    tmux.env = client_env(live_server.url, live_server.annotator_token, tmp_path / "client-home")
    tmux.run(
        "new-session", "-d", "-s", tmux.session, "-x", "100", "-y", "30",
        f"exec {shlex.quote(str(ANNOTATOR))} --audio none",
    )  # fmt: skip
    wait_for(lambda: "#1  clip" in tmux.screen(), "the first clip", 30, tmux)
    yield tmux


def resize(pane: Tmux, width: int, height: int) -> None:
    pane.run("resize-window", "-t", pane.session, "-x", str(width), "-y", str(height))


def full_ui(screen: str) -> bool:
    return "#1  clip" in screen and ENLARGE not in screen


def test_the_size_check_uses_the_size_the_terminal_has_now(pane: Tmux) -> None:
    resize(pane, 60, 20)
    wait_for(lambda: "now 60×20" in pane.screen(), "the size notice at 60×20", 10, pane)
    resize(pane, 80, 24)  # exactly the minimum: the annotate screen, not "now 80×24"
    wait_for(lambda: full_ui(pane.screen()), "the full screen at 80×24", 10, pane)
    resize(pane, 60, 20)  # and back down: the notice, not the full UI squeezed
    wait_for(lambda: "now 60×20" in pane.screen(), "the size notice again", 10, pane)
    resize(pane, 79, 30)
    wait_for(lambda: "now 79×30" in pane.screen(), "the notice follows the size", 10, pane)
    resize(pane, 120, 40)
    wait_for(lambda: full_ui(pane.screen()), "the full screen at 120×40", 10, pane)


def test_the_palette_offers_the_annotators_actions_and_quit_only(pane: Tmux) -> None:
    for word in ("theme", "maximize", "screenshot", "quit"):
        pane.keys("C-p")  # opened afresh each time: the palette's Input is Textual's own
        wait_for(lambda: "Submit and next" in pane.screen(), "the palette", 10, pane)
        pane.text(word)
        wait_for(lambda w=word: w in pane.screen(), f"{word!r} typed", 5, pane)
        if word != "quit":
            wait_for(lambda: "No matches found" in pane.screen(), f"nothing for {word}", 5, pane)
            pane.keys("Escape")
            wait_for(lambda: "🔎" not in pane.screen(), "the palette closed", 5, pane)
    wait_for(lambda: "Quit" in pane.screen(), "quit offered", 5, pane)
