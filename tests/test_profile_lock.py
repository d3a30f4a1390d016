"""The profile lock (`annotator.profile_lock`) and the liveness check adoption relies on, with
real processes: a holder that is alive is named; one killed with SIGKILL never blocks anyone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annotator.profile_lock import ProfileInUse, ProfileLock, holder
from annotator.workbench.sitting import session_alive, this_session

HOLD = """
import sys, time
from pathlib import Path
from annotator.profile_lock import ProfileLock
ProfileLock.acquire(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(600)
"""


def _holding(data: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_told_who_holds_the_profile(tmp_path: Path) -> None:
    before = time.time()
    with ProfileLock.acquire(tmp_path):
        with pytest.raises(ProfileInUse) as e:
            ProfileLock.acquire(tmp_path)
        assert e.value.holder.pid == os.getpid()
        assert e.value.holder.since is not None and before - 1 <= e.value.holder.since
        assert f"pid {os.getpid()}, since " in str(e.value) and "ANNOTATOR_HOME=" in str(e.value)
        found = holder(tmp_path)
        assert found is not None and found.pid == os.getpid()
    assert holder(tmp_path) is None  # released
    ProfileLock.acquire(tmp_path).release()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    proc = _holding(tmp_path)
    try:
        found = holder(tmp_path)
        assert found is not None and found.pid == proc.pid
        with pytest.raises(ProfileInUse):
            ProfileLock.acquire(tmp_path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # The file still names the dead pid: only the kernel's lock counts, and it is gone.
        assert str(proc.pid) in (tmp_path / "annotator.lock").read_text()
        assert holder(tmp_path) is None
        ProfileLock.acquire(tmp_path).release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_session_not_yet_reaped_counts_as_gone() -> None:
    """A zombie (killed, its parent not yet waited) still has /proc/PID with the same start
    time; its leases must be adopted by the next session, not left to expire."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        session = this_session().rsplit(":", 2)[0] + f":{proc.pid}:"
        with open(f"/proc/{proc.pid}/stat", encoding="ascii") as f:
            session += f.read().rsplit(")", 1)[1].split()[19]
        assert session_alive(session)
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not session_alive(session)  # still unreaped here
    finally:
        proc.kill()
        proc.wait()
