"""One annotator per profile: the lock the TUI holds on its data directory while it runs.

Two TUIs on one profile would both adopt the checked-out leases, both work the same clip and
race each other's drafts, so the second is refused at start with who holds the profile (pid,
since when) and what to do. The lock is `flock` on `annotator.lock` in the data directory: the
kernel drops it when the holder exits however it exits (kill -9, a closed terminal), so a stale
lock never blocks anyone; the pid and start time written into the file are only for the message.

`annotator checkout` and `annotator sync` do not take the lock: they work beside a running TUI
(the store serialises writers; the server's idempotency keys make a submission sent by both
count once). `annotator purge` refuses while the lock is held: it would delete the cache and
drafts the TUI is working from.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from annotator import paths

LOCK_NAME = "annotator.lock"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a profile, as its lock file says (None: not written yet or unreadable)."""

    pid: int | None
    since: float | None
    host: str | None

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "a process"
        if self.host and self.host != socket.gethostname():
            who += f" on {self.host}"
        if self.since is not None:
            who += f", since {datetime.fromtimestamp(self.since).astimezone():%H:%M:%S}"
        return who


class ProfileInUse(Exception):
    """Another annotator process holds this profile."""

    def __init__(self, data_dir: Path, holder: Holder) -> None:
        self.data_dir = data_dir
        self.holder = holder
        super().__init__(
            f"this profile ({data_dir}) is open in another annotator ({holder.describe()}). "
            "Work in that one, or quit it (ctrl+q) and start again here; to run a second "
            "annotator at the same time, give it a profile of its own: "
            "ANNOTATOR_HOME=/some/other/dir annotator"
        )


class ProfileLock:
    """Held for the life of the process (`release` at shutdown; the kernel drops it anyway)."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, data_dir: Path | None = None) -> ProfileLock:
        """Take the profile's lock or raise ProfileInUse naming the holder. Never waits."""
        data_dir = data_dir or paths.ensure_private_dir(paths.data_dir())
        path = data_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            _lock_or_raise(fd)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ProfileInUse(data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{time.time():.3f}\n{socket.gethostname()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)  # the next holder writes its own; nobody reads a dead pid
            os.close(fd)

    def __enter__(self) -> ProfileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(data_dir: Path | None = None) -> Holder | None:
    """Who holds the profile now, or None when nobody does (for purge, checkout and sync)."""
    data_dir = data_dir or paths.data_dir()
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _lock_or_raise(fd: int, attempts: int = 5) -> None:
    """An exclusive lock, or BlockingIOError while another process holds one. A `holder()`
    check (purge, checkout, sync) holds a shared lock for a moment: tried a few times over
    ~0.1 s, so such a check never turns a starting annotator away."""
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.025)


def _read_holder(fd: int) -> Holder:
    try:
        lines = os.pread(fd, 512, 0).decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    pid = int(lines[0]) if lines and lines[0].isdigit() else None
    try:
        since = float(lines[1]) if len(lines) > 1 else None
    except ValueError:
        since = None
    host = lines[2] if len(lines) > 2 and lines[2] else None
    return Holder(pid, since, host)
