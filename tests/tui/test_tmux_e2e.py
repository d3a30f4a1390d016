"""The real `annotator demo` in a real terminal (tmux), driven by keys only.

It annotates three clips, reads the screen with `capture-pane`, finds the annotations on the demo
server (whose URL and an admin token `run_demo` writes to ANNOTATOR_DEMO_STATE_FILE), quits, and
checks that quitting stopped the server.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

ANNOTATOR = Path(sys.executable).parent / "annotator"
CLIPS = [
    ("set an alarm for seven thirty", "alarmset", "alarm_set", []),
    ("what is the weather in leeds", "weatherquery", "weather_query", ["pii"]),
    ("play some jazz [music]", "playmusic", "play_music", ["media_playback"]),
]
FLAG_KEYS = {"pii": "M-P", "media_playback": "M-M"}


class Tmux:
    def __init__(self, socket: str, session: str) -> None:
        self.base = ["tmux", "-L", socket]
        self.session = session

    def run(self, *args: str) -> str:
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False)
        return out.stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)
        time.sleep(0.15)

    def text(self, text: str) -> None:
        self.run("send-keys", "-t", self.session, "-l", text)
        time.sleep(0.15)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def alive(self) -> bool:
        return (
            subprocess.run(
                [*self.base, "has-session", "-t", self.session], capture_output=True, check=False
            ).returncode
            == 0
        )


def wait_for(
    predicate: Callable[[], bool], what: str, timeout: float = 30.0, screen: Tmux | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    shown = f"; the screen:\n{screen.screen()}" if screen is not None else ""
    raise AssertionError(f"timed out waiting for {what}{shown}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip(reason="tmux is not installed")
    if not ANNOTATOR.exists():
        pytest.skip(reason=f"no console script at {ANNOTATOR}")
    t = Tmux(f"annotator-test-{uuid.uuid4().hex[:8]}", "demo")
    yield t
    t.run("kill-server")


def export(state: dict[str, Any]) -> list[dict[str, Any]]:
    resp = httpx.get(
        f"{state['url']}/v1/export",
        headers={"Authorization": f"Bearer {state['admin_token']}"},
        timeout=5,
    )
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


def test_demo_three_clips_by_keys_only(tmux: Tmux, tmp_path: Path) -> None:
    state_file = tmp_path / "demo-state.json"
    env = {
        "ANNOTATOR_HOME": str(tmp_path / "home"),
        "ANNOTATOR_DEMO_STATE_FILE": str(state_file),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
    }
    command = " ".join(
        [
            "env",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(str(ANNOTATOR)),
            "demo",
            "--audio",
            "none",
            "--clips",
            "6",
        ]
    )
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40", command)
    wait_for(state_file.exists, "the demo server", timeout=60)
    state = json.loads(state_file.read_text())
    wait_for(lambda: "#1  clip" in tmux.screen(), "the first clip on screen", screen=tmux)

    for n, (transcript, filter_text, _intent, flags) in enumerate(CLIPS, start=1):
        tmux.keys("M-C")  # clear the ASR hint
        tmux.text(transcript)
        tmux.keys("C-l")
        tmux.text(filter_text)
        tmux.keys("Enter")
        for flag in flags:
            tmux.keys(FLAG_KEYS[flag])
        wait_for(lambda t=transcript: t in tmux.screen(), "the typed transcript", screen=tmux)
        tmux.keys("C-s")
        wait_for(lambda n=n: f"#{n + 1}  clip" in tmux.screen(), f"clip #{n + 1}", screen=tmux)

    wait_for(lambda: "3 this session" in tmux.screen(), "the session count", screen=tmux)
    wait_for(lambda: len(export(state)) == 3, "three annotations on the server", timeout=20)
    rows = export(state)
    got = sorted((r["transcript"], r["intent"], sorted(r["flags"])) for r in rows)
    assert got == sorted((t, i, sorted(f)) for t, _, i, f in CLIPS)

    # Keep the pane after exit, to read what quitting said about the clips it held.
    tmux.run("set-option", "-t", tmux.session, "remain-on-exit", "on")
    tmux.keys("C-q")
    wait_for(
        lambda: tmux.run("list-panes", "-t", tmux.session, "-F", "#{pane_dead}").strip() == "1",
        "the demo to exit",
        timeout=20,
    )
    said = tmux.screen()
    assert "annotator: released 3" in said, said  # the one on screen and the two ready
    tmux.run("kill-session", "-t", tmux.session)
    wait_for(lambda: not tmux.alive(), "the session to close", timeout=5)
    # Quitting stopped the throwaway server.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{state['url']}/v1/health", timeout=1)
