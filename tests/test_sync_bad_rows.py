"""One malformed outbox row is rejected on its own, with its reason; the rest are sent, and no
transcript text reaches any output (the real `annotator sync` command, a real server)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.store import LocalStore
from tests.fixtures.server import LiveServer, annotator_command
from tests.store.sync_support import annotation_for, export, lease_many

SECRET = "my pin is four four two one"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def annotator(server: LiveServer, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": server.url,
        "ANNOTATOR_TOKEN": server.annotator_token,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [*annotator_command(), *argv], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("count", [3, 6], ids=["singly", "batch"])
def test_a_malformed_row_is_rejected_alone_and_the_rest_are_sent(
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
) -> None:
    live_server.ingest(test_wavs(count))
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    leases = lease_many(live_server.url, live_server.annotator_token, count)
    with LocalStore.open() as store:
        keys = []
        for n, lease in enumerate(leases):
            store.remember_lease(lease)
            text = SECRET if n == 1 else f"fine {n}"
            keys.append(store.submit(annotation_for(lease, text), clip_id=lease.clip.clip_id).key)
        path = store.path
    # As a damaged disk or an older version might leave it: the intent is not a string.
    body = json.loads(annotation_for(leases[1], SECRET).model_dump_json(exclude_none=True))
    body["intent"] = 5
    with sqlite3.connect(path) as db:
        db.execute("UPDATE outbox SET body_json = ? WHERE key = ?", (json.dumps(body), keys[1]))

    done = annotator(live_server, home, "sync")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # finished, with something to look at
    assert "Traceback" not in output and SECRET not in output and "four" not in output
    assert f"sent {count - 1}" in done.stdout and "rejected 1" in done.stdout
    rows = export(live_server.url, live_server.admin_token)
    assert sorted(r["transcript"] for r in rows) == [f"fine {n}" for n in range(count) if n != 1]

    status = annotator(live_server, home, "sync", "--status")
    assert status.returncode == 0
    assert "rejected" in status.stdout and "malformed" in status.stdout
    assert "intent" in status.stdout and SECRET not in status.stdout + status.stderr
