"""The real `annotator demo` in a real terminal: one private tmux server per test.

`Tmux` drives a pane (keys, literal text, a capture of the screen); `start_demo` runs
`annotator demo` in it with a throwaway ANNOTATOR_HOME and returns what `run_demo` wrote to
ANNOTATOR_DEMO_STATE_FILE (the demo server's URL and an admin token); `export` reads the
annotations back from that server.
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

ANNOTATOR = Path(sys.executable).parent / "annotator"


class Tmux:
    def __init__(self, socket: str, session: str) -> None:
        self.base = ["tmux", "-L", socket]
        self.session = session
        #: The environment the tmux server starts with (its panes inherit it): secrets set here
        #: stay out of every argv.
        self.env: dict[str, str] | None = None

    def run(self, *args: str) -> str:
        out = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, check=False, env=self.env
        )
        return out.stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        """Hand keys to the pane at once (one tmux command: usually one write to the pty)."""
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def keys(self, *keys: str) -> None:
        self.send(*keys)
        time.sleep(0.15)

    def text(self, text: str) -> None:
        self.send(text, literal=True)
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
        time.sleep(0.05)
    shown = f"; the screen:\n{screen.screen()}" if screen is not None else ""
    raise AssertionError(f"timed out waiting for {what}{shown}")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip(reason="tmux is not installed")
    if not ANNOTATOR.exists():
        pytest.skip(reason=f"no console script at {ANNOTATOR}")
    t = Tmux(f"annotator-test-{uuid.uuid4().hex[:8]}", "demo")
    yield t
    t.run("kill-server")


def demo_command(home: Path, state_file: Path, *, clips: int, keymap: str | None = None) -> str:
    """The shell command that runs the real `annotator demo`, muted, in a tmux pane."""
    env = {
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_DEMO_STATE_FILE": str(state_file),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
    }
    return " ".join(
        [
            "env",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(str(ANNOTATOR)),
            "demo",
            "--audio",
            "none",
            "--clips",
            str(clips),
            *(["--keymap", keymap] if keymap else []),
        ]
    )


def start_demo(
    tmux: Tmux, tmp_path: Path, *, clips: int = 6, keymap: str | None = None
) -> dict[str, Any]:
    """`annotator demo` in a 120x40 pane; returns once the first clip is on screen."""
    state_file = tmp_path / "demo-state.json"
    command = demo_command(tmp_path / "home", state_file, clips=clips, keymap=keymap)
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40", command)
    wait_for(state_file.exists, "the demo server", timeout=60, screen=tmux)
    state: dict[str, Any] = json.loads(state_file.read_text())
    wait_for(lambda: "#1  clip" in tmux.screen(), "the first clip on screen", screen=tmux)
    return state


def client_env(server_url: str, token: str, home: Path) -> dict[str, str]:
    """The environment for `annotator` against a server (set as `Tmux.env`: no argv holds it)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": server_url,
        "ANNOTATOR_TOKEN": token,
    }


def export(state: dict[str, Any]) -> list[dict[str, Any]]:
    resp = httpx.get(
        f"{state['url']}/v1/export",
        headers={"Authorization": f"Bearer {state['admin_token']}"},
        timeout=5,
    )
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]
