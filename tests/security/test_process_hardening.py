"""Finding 4 (issue 10): the client's processes write no core dumps and are not dumpable.

Each subcommand runs in a fresh process through the real `annotator.cli.main` (a throwaway home,
so the quick ones return at once after their start-up); the process then reports what is in
force for itself: `PR_GET_DUMPABLE` (only a process can ask that of itself) and
`/proc/self/limits`. The relay, which runs until stopped, is also checked from outside: the
kernel's `/proc/<pid>/limits` of a real `annotator relay`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.server import annotator_command

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's"
)

_REPORT = """
import json, sys, threading, time
from annotator.cli import main
from annotator.hardening import status
argv = sys.argv[1:]
if argv and argv[0] == "relay":  # runs until stopped: let it start, then look
    threading.Thread(target=main, args=(argv,), daemon=True).start()
    time.sleep(1.0)
else:
    try:
        main(argv)
    except SystemExit:
        pass
s = status()
core = [l for l in open("/proc/self/limits") if l.startswith("Max core file size")][0].split()
print("REPORT " + json.dumps({"dumpable": s.dumpable, "core": core[4:6]}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _report(argv: list[str], home: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _REPORT, *argv],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        env={**os.environ, "ANNOTATOR_HOME": str(home), "ANNOTATOR_SERVER": "", "TERM": "dumb"},
    )  # fmt: skip
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("REPORT ")]
    assert lines, f"{argv}: no report; stderr: {done.stderr[-1500:]}"
    result: dict[str, object] = json.loads(lines[-1].removeprefix("REPORT "))
    return result


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "--status"],
        ["checkout", "--count", "1"],
        ["purge", "--yes"],
        ["--audio", "none"],  # the TUI (no subcommand); stops at "no server configured"
        ["relay", "--port", "0", "--audio", "none"],
    ],
    ids=["sync", "checkout", "purge", "tui", "relay"],
)
def test_a_started_client_process_is_not_dumpable_and_has_no_core_limit(
    argv: list[str], tmp_path: Path
) -> None:
    if argv[0] == "relay":
        argv = ["relay", "--port", str(_free_port()), "--audio", "none"]
    assert _report(argv, tmp_path / "home") == {"dumpable": 0, "core": ["0", "0"]}


def test_server_side_commands_are_left_alone(tmp_path: Path) -> None:
    # The control: without the call the same report shows a dumpable process (the test can fail).
    got = _report(["token", "create", "x", "--db", str(tmp_path / "q.db")], tmp_path / "home")
    assert got["dumpable"] == 1


def test_a_running_relay_has_a_zero_core_limit_seen_from_outside(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*annotator_command(), "relay", "--port", str(port), "--audio", "none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        env={**os.environ, "ANNOTATOR_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "the relay exited"
            time.sleep(0.05)
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(ln for ln in limits.splitlines() if ln.startswith("Max core file size"))
        assert line.split()[4:6] == ["0", "0"], line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
