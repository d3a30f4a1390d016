"""What every benchmark suite needs: percentiles, a free loopback port, ALSA's file sink, the
headless client's arguments, waiting for the first clip, and a process's memory.

The bench runs from the repository and does not import the test tree, so the few lines it shares
with tests/fixtures live here once.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from annotator.app import AnnotatorApp
    from annotator.screens.annotate import AnnotateScreen


def pct(values: list[float], q: float) -> float:
    """The q-th percentile; NaN for no values (a suite that measured nothing says so)."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alsa_file_sink(home: Path) -> Path:
    """HOME/.asoundrc whose default PCM writes raw interleaved frames to HOME/capture.raw (the
    same sink as tests/fixtures/audio.write_file_sink); returns the capture path."""
    home.mkdir(parents=True, exist_ok=True)
    capture = home / "capture.raw"
    (home / ".asoundrc").write_text(
        "pcm.!default {\n"
        "  type file\n"
        '  slave.pcm "null"\n'
        f'  file "{capture}"\n'
        '  format "raw"\n'
        "  truncate true\n"
        "}\n"
    )
    return capture


def client_args(*, server: str | None = None, audio: str = "none") -> argparse.Namespace:
    """The `annotator` command's options for a headless client; the token always comes from
    ANNOTATOR_TOKEN (and the server from ANNOTATOR_SERVER when not given), never argv."""
    return argparse.Namespace(
        server=server,
        token=None,
        ca_bundle=None,
        insecure=False,
        config=None,
        audio=audio,
        keymap=None,
    )


async def wait_for_clip(
    pilot: Pilot[Any], app: AnnotatorApp, timeout: float, step: float = 0.02
) -> AnnotateScreen:
    """The annotate screen once a clip is on it."""
    deadline = time.monotonic() + timeout
    while True:
        screen = app._annotate_screen()
        if screen is not None and screen.current is not None:
            return screen
        if time.monotonic() > deadline:
            raise RuntimeError(f"no clip on screen after {timeout:.0f} s")
        await pilot.pause(step)


def proc_status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory line of /proc/PID/status (VmRSS, VmHWM) in MB; None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None  # a zombie: its memory is gone


def own_mb(field: str) -> float:
    """This process's VmRSS/VmHWM in MB."""
    value = proc_status_mb(field)
    if value is None:
        raise RuntimeError(f"{field} not in /proc/self/status")
    return value
