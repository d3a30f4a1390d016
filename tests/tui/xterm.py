"""The real command in a real xterm on a private X server (Xvfb), typed at with xdotool.

`XTerm.start` starts `Xvfb -displayfd` (it picks a free display, so tests run in parallel), an
xterm with the given resources running the command, and reads the screen by feeding xterm's own
log of what the program wrote (`-l -lf`) through pyte (tests/tui/kitty_pty.py's VtScreen).
`keys()` types through XTEST (`xdotool key` without `--window`: xterm ignores synthetic
events), as a keyboard would. Every process it starts is ended by its pid in `close()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.tui.kitty_pty import VtScreen

TOOLS = ("Xvfb", "xterm", "xdotool")  # Debian: xvfb, xterm, xdotool (Makefile APT_PACKAGES)


def tools_or_skip() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(reason=f"needs {', '.join(missing)} (apt-get install xvfb xterm xdotool)")


class XTerm(VtScreen):
    def __init__(self, workdir: Path, cols: int = 120, rows: int = 40) -> None:
        super().__init__(cols, rows)
        self.workdir = workdir
        self.cols, self.rows = cols, rows
        self.log = workdir / "xterm.log"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self.env: dict[str, str] = {}
        self._err: BinaryIO | None = None

    def start(self, argv: list[str], env: dict[str, str], resources: list[str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log.unlink(missing_ok=True)  # xterm appends to its log
        read_fd, write_fd = os.pipe()
        xvfb = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                "1600x1000x24",
                "-nolisten",
                "tcp",
                # Without it the server resets when its last client leaves — the display check's
                # xdotool — and an xterm connecting during that reset cannot open the display.
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(xvfb)
        os.close(write_fd)
        with os.fdopen(read_fd) as displayfd:
            display = displayfd.readline().strip()
        if not display:
            pytest.skip(reason=f"Xvfb could not start an X server (exit {xvfb.wait(5)})")
        self.env = {**os.environ, "DISPLAY": f":{display}"}
        self._wait_for_display(xvfb)
        command = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        options = [arg for r in resources for arg in ("-xrm", f"XTerm*{r}")]
        self._err = (self.workdir / "xterm.err").open("wb")
        xterm = subprocess.Popen(
            [
                "xterm",
                "-geometry",
                f"{self.cols}x{self.rows}",
                *options,
                "-l",
                "-lf",
                str(self.log),
                "-e",
                *command,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
        )
        self._procs.append(xterm)
        threading.Thread(target=self._tail_log, daemon=True).start()
        self.window = self._window(xterm)
        self.focus()

    def _wait_for_display(self, xvfb: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.xdotool("getdisplaygeometry").strip():
                return
            if xvfb.poll() is not None:
                pytest.skip(reason=f"Xvfb exited ({xvfb.returncode}) before serving a display")
            time.sleep(0.1)
        pytest.skip(reason="Xvfb started but served no display within 20 s")

    def focus(self) -> None:
        """Input focus on the xterm, and the pointer over it (no window manager: with the pointer
        elsewhere, focus may follow it to the root window)."""
        self.xdotool("mousemove", "--window", self.window, "20", "20")
        self.xdotool("windowfocus", "--sync", self.window)

    def _window(self, xterm: subprocess.Popen[bytes]) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and xterm.poll() is None:
            found = self.xdotool("search", "--onlyvisible", "--class", "xterm").split()
            if found:
                return found[0]
            time.sleep(0.1)
        err = (self.workdir / "xterm.err").read_text(errors="replace")[-2000:]
        raise AssertionError(f"no xterm window appeared (xterm exit {xterm.poll()}): {err}")

    def _tail_log(self) -> None:
        offset = 0
        while not self._stop.is_set():
            with contextlib.suppress(FileNotFoundError), self.log.open("rb") as log:
                log.seek(offset)
                data = log.read()
                offset += len(data)
                if data:
                    self.feed(data)
            time.sleep(0.03)

    def xdotool(self, *args: str) -> str:
        out = subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, check=False
        )
        return out.stdout

    def keys(self, *keys: str) -> None:
        """Type `keys` (xdotool names: "alt+n", "Left", "shift+F1") back to back, no delay."""
        self.xdotool("key", "--delay", "0", *keys)

    def close(self) -> None:
        self._stop.set()
        if self._err is not None:
            self._err.close()
        for proc in reversed(self._procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
