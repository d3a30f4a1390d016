"""`annotator demo` killed with its terminal leaves nothing in /tmp, and the next demo removes
what the killed one left in the cache dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from annotator import launch
from tests.tui.tmux import ANNOTATOR, demo_command

pytestmark = [pytest.mark.tmux, pytest.mark.slow]


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False
    ).stdout


def wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_demo(socket: str, home: Path, state_file: Path) -> None:
    command = demo_command(home, state_file, clips=2)
    tmux(socket, "new-session", "-d", "-s", "demo", "-x", "120", "-y", "40", command)
    wait_for(state_file.exists, "the demo server")
    wait_for(lambda: "#1  clip" in tmux(socket, "capture-pane", "-p", "-t", "demo"), "a clip")


def server_up(state_file: Path) -> bool:
    url = json.loads(state_file.read_text())["url"]
    try:
        return httpx.get(f"{url}/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_demo_killed_with_its_terminal_is_cleaned_up_by_the_next_one(tmp_path: Path) -> None:
    if shutil.which("tmux") is None or not ANNOTATOR.exists():
        pytest.skip(reason="needs tmux and the annotator console script")
    home = tmp_path / "home"
    runs = home / "cache" / "demo"
    in_tmp = set(Path("/tmp").glob("annotator-demo-*"))
    socket = f"annotator-demo-{uuid.uuid4().hex[:8]}"
    try:
        first_state = tmp_path / "first.json"
        start_demo(socket, home, first_state)
        (killed,) = runs.glob("run-*")
        tmux(socket, "kill-server")  # the terminal goes away: SIGHUP, no clean exit
        wait_for(lambda: not server_up(first_state), "the killed demo's server to stop", 15)
        pid = int(killed.name.split("-")[1])
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), "the killed demo to exit", 15)
        assert killed.exists()  # nothing could clean up: the next start does

        second_state = tmp_path / "second.json"
        start_demo(socket, home, second_state)
        assert not killed.exists()
        (current,) = runs.glob("run-*")
        tmux(socket, "send-keys", "-t", "demo", "C-q")
        wait_for(lambda: not current.exists(), "a demo that quits to remove its own files", 20)
    finally:
        tmux(socket, "kill-server")
    assert set(Path("/tmp").glob("annotator-demo-*")) <= in_tmp


def test_demo_dir_keeps_the_runs_of_live_processes(tmp_path: Path, monkeypatch: object) -> None:
    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    base = launch.demo_dir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = base / f"run-{gone.pid}-abc"
    live = base / f"run-{os.getpid()}-def"
    other = base / "notes-of-mine"
    for path in (stale, live, other):
        path.mkdir()
    assert launch.demo_dir() == base
    assert not stale.exists() and live.exists() and other.exists()
    assert base.stat().st_mode & 0o077 == 0
