"""Keys typed while the screen waits for a clip land in the clip that arrives (issue 16).

The real `annotator` in tmux against a real `annotator serve` whose queue is empty: the screen
says the queue is empty. A whole annotation is typed — intent, transcript with a Backspace and a
tag, a flag, submit — and only then is a clip ingested. The server must receive exactly what the
same keys give when typed on a clip that is already on screen (the second clip, as reference).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.server import LiveServer
from tests.tui.test_key_bursts import export_rows, shown_clip
from tests.tui.tmux import ANNOTATOR, Tmux, client_env, tmux, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.tmux]
__all__ = ["tmux"]  # the fixture

#: An annotation by keys alone, on the default keymap (shift+F1 = [noise], ctrl+F5 = pii).
KEYS: list[tuple[str, bool]] = [
    ("C-l", False),
    ("alarmset", True),
    ("Enter", False),
    ("C-t", False),
    ("set an alarn", True),
    ("BSpace", False),
    ("m ", True),
    ("S-F1", False),
    (" please", True),
    ("C-F5", False),
    ("C-s", False),
]


def type_annotation(pane: Tmux) -> None:
    for keys, literal in KEYS:
        pane.send(keys, literal=literal)
        time.sleep(0.03)


@pytest.fixture
def empty_queue_pane(tmux: Tmux, live_server: LiveServer, tmp_path: Path) -> Iterator[Tmux]:
    env = client_env(live_server.url, live_server.annotator_token, tmp_path / "client-home")
    tmux.env = env
    tmux.run(
        "new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40",
        f"exec {shlex.quote(str(ANNOTATOR))} --audio none",
    )  # fmt: skip
    wait_for(lambda: "queue is empty" in tmux.screen(), "the empty queue said", 30, tmux)
    yield tmux


def rows_for(server: LiveServer, clip: str) -> list[dict[str, Any]]:
    return [r for r in export_rows(server) if r["clip_id"].startswith(clip)]


def test_keys_typed_while_waiting_for_a_clip_land_in_it_in_order(
    empty_queue_pane: Tmux, live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    pane = empty_queue_pane
    type_annotation(pane)
    typed = sum(len(keys) if literal else 1 for keys, literal in KEYS)
    held = f"{typed} keys typed wait for it"
    wait_for(lambda: held in pane.screen(), "the keys held, said on screen", 10, pane)
    assert shown_clip(pane.screen()) is None
    live_server.ingest(test_wavs(2))  # the prefetcher finds them on its next try (≤ 15 s)

    def submitted() -> list[dict[str, Any]]:
        return export_rows(live_server)

    wait_for(lambda: len(submitted()) == 1, "the held annotation on the server", 40, pane)
    (waited,) = submitted()

    # The reference: the same keys on a clip already on screen.
    wait_for(lambda: shown_clip(pane.screen()) is not None, "the second clip", 20, pane)
    second = shown_clip(pane.screen())
    assert second is not None and not waited["clip_id"].startswith(second)
    type_annotation(pane)
    wait_for(lambda: bool(rows_for(live_server, second)), "the reference annotation", 20, pane)
    (reference,) = rows_for(live_server, second)

    assert waited["transcript"] == reference["transcript"] == "set an alarm [noise] please"
    assert waited["intent"] == reference["intent"] == "alarm_set"
    assert waited["flags"] == reference["flags"] == ["pii"]
