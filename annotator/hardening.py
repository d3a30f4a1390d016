"""Keep a client process's memory out of core dumps and out of other processes' reach.

The TUI, `checkout`, `sync`, `purge` and the relay hold decoded clip audio, the cache key and
transcripts in memory. A crash (or `kill -ABRT` by anyone with the same uid) would otherwise write
all of it into a core file — 133 MB with the clip's PCM, seen on a real run — wherever the
system's `core_pattern` says, often the working directory or a crash collector readable by
admins. So at start each of them calls `harden_process()`:

- `RLIMIT_CORE` is set to 0 (soft and hard: a later `ulimit -c unlimited` in the same process
  cannot raise it back), so the kernel writes no core file;
- on Linux, `prctl(PR_SET_DUMPABLE, 0)`: no core even through a pipe handler that ignores the
  rlimit (systemd-coredump, apport), and `/proc/<pid>/mem`, `environ` and ptrace attach become
  root-only — another process of the same user can no longer read the audio out of memory.

Elsewhere (macOS, BSD) the rlimit is what is available; failures are logged and ignored — a
client that cannot harden itself still works. `status()` reports what is in force, for
`annotator doctor` and the tests.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


@dataclass(frozen=True, slots=True)
class Hardening:
    core_limit: tuple[int, int]
    #: 0 not dumpable, 1 dumpable; None where prctl does not exist (not Linux).
    dumpable: int | None


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The interpreter's own symbols include libc's: `ctypes.util.find_library` would run
        # `ldconfig -p` twice per start (a fork and exec each, on the cold-start path).
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.prctl
    except (OSError, AttributeError):
        try:
            fn = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        except (OSError, AttributeError):
            return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return cast(Callable[..., int], fn)


def harden_process() -> Hardening:
    """No core dumps, not dumpable (Linux). Idempotent; never raises."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as e:
        log.warning("could not disable core dumps: %s", e)
    prctl = _prctl()
    if prctl is not None and prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
    return status()


def status() -> Hardening:
    prctl = _prctl()
    dumpable = int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) if prctl is not None else None
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    return Hardening(core_limit=(soft, hard), dumpable=dumpable)
