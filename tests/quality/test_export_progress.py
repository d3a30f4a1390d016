"""The progress bar of `annotator export` on large exports (issue 12): the real command with its
stderr on a pseudo-terminal shows a bar from 200 finals to 100 %, and none below 200."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

from api.server.backends import open_repository
from tests.fixtures.server import annotator_command
from tests.quality.rows import insert_queue, random_queue


def _export_on_a_terminal(tmp_path: Path, finals: int) -> tuple[str, Path]:
    """Run `annotator export --final --out FILE` over `finals` agreeing clips; what its stderr
    terminal received (escape sequences stripped of nothing) and the file."""
    root = tmp_path / f"q{finals}"
    url = f"sqlite:///{root / 'queue.db'}"
    root.mkdir()
    repo = open_repository(url, root / "data")
    try:
        insert_queue(repo, *random_queue(finals, seed=finals, flags=[], agree=True))
    finally:
        repo.close()
    out = root / "finals.jsonl"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    cmd = [*annotator_command(), "export", "--final", "--out", str(out)]
    cmd += ["--db", url, "--data", str(root / "data")]
    env = {**os.environ, "ANNOTATOR_HOME": str(root / "home"), "TERM": "xterm-256color"}
    for name in ("NO_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE"):
        env.pop(name, None)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env=env)  # fmt: skip
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace"), out


def test_a_large_export_shows_its_progress_and_a_small_one_does_not(tmp_path: Path) -> None:
    shown, out = _export_on_a_terminal(tmp_path, 200)
    assert len(out.read_text().splitlines()) == 200
    assert "exporting 200 final annotations" in shown
    assert "100%" in shown  # the bar's last frame, as the export ends
    assert "━" in shown  # the bar itself
    assert "exported 200 final annotations" in shown
    quiet, out = _export_on_a_terminal(tmp_path, 199)
    assert len(out.read_text().splitlines()) == 199
    assert "exported 199 final annotations" in quiet
    assert "exporting" not in quiet and "━" not in quiet
