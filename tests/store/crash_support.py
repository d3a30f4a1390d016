"""Run the crash driver, kill it with SIGKILL, and check every promise it printed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from annotator.store import LocalStore, OutboxState

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Promises:
    submitted: dict[str, str] = field(default_factory=dict)  # key -> clip
    drafts: dict[str, int] = field(default_factory=dict)  # lease -> words on disk at least
    resumed: int = 0
    kills: int = 0


def run_and_kill(
    home: Path,
    promises: Promises,
    *,
    server: str | None = None,
    token: str | None = None,
    rng: random.Random,
) -> None:
    cmd = [sys.executable, "-m", "tests.store.crash_driver"]
    if server:
        cmd += ["--server", server, f"--token={token or ''}"]  # a token may start with "-"
    env = {**os.environ, "ANNOTATOR_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    assert proc.stdout is not None
    lines: list[str] = []
    ready = threading.Event()
    # Half the runs die right after a submit returned; the others at a random instant.
    on_submit = rng.randint(1, 4) if rng.random() < 0.5 else None

    def read() -> None:
        assert proc.stdout is not None
        seen = 0
        for raw in proc.stdout:
            line = raw.decode().strip()
            lines.append(line)
            if line == "READY":
                ready.set()
            if on_submit is not None and line.startswith("SUBMITTED"):
                seen += 1
                if seen == on_submit:
                    proc.kill()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not ready.wait(30):
        proc.kill()
        raise AssertionError(
            f"driver never became ready: {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    time.sleep(rng.uniform(0.0, 0.5))
    proc.kill()
    proc.wait(10)
    reader.join(10)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
    promises.kills += 1
    for line in lines:
        kind, *rest = line.split()
        if kind == "SUBMITTED":
            promises.submitted[rest[0]] = rest[1]
            promises.drafts.pop(rest[2], None)
        elif kind == "DRAFT":
            promises.drafts[rest[0]] = max(int(rest[1]), promises.drafts.get(rest[0], 0))
        elif kind == "RESUMED":
            promises.resumed += 1
            # It came back with at least what it had promised.
            assert int(rest[1]) >= promises.drafts.get(rest[0], 0), line


def check_promises(store: LocalStore, promises: Promises) -> None:
    history = {h.key: h for h in store.history(100_000)}
    missing = set(promises.submitted) - set(history)
    assert not missing, f"{len(missing)} submissions lost after SIGKILL"
    for key, clip in promises.submitted.items():
        assert history[key].clip_id == clip
        assert history[key].state in (OutboxState.PENDING, OutboxState.SENT)
    for lease, words in promises.drafts.items():
        draft = store.load_draft(lease)
        submitted = any(h.lease_id == lease for h in history.values())
        assert submitted or (draft is not None and len(draft.transcript.split()) >= words), lease
