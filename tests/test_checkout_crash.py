"""`annotator checkout` killed with SIGKILL after the server granted its leases and before it
recorded them all: the next checkout asks again under the dead one's request key and gets those
leases back (its clips would otherwise sit leased to nobody for the 8-hour checkout lease).

The real command against the real server on loopback; the kill lands while the checkout
downloads its clips (the server already shows the leases, the profile not all of them yet).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.store.db import LocalStore
from tests.fixtures.server import LiveServer, annotator_command
from tests.server.helpers import live_lease_ids

pytestmark = pytest.mark.slow

ATTEMPTS = 4


def recorded() -> set[str]:
    with LocalStore.open() as store:
        return {r.lease_id for r in store.lease_records()}


def test_a_checkout_killed_mid_way_is_recovered_by_the_next(
    make_live_server: Callable[..., LiveServer],
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_live_server("--max-live-leases", "500")
    server.ingest(test_wavs(30 * ATTEMPTS + 5))
    home = tmp_path / "home"
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    env = {
        **os.environ,
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": server.url,
        "ANNOTATOR_TOKEN": server.annotator_token,
    }
    cmd = [*annotator_command(), "checkout", "--count", "30"]
    stranded: set[str] = set()
    for _ in range(ATTEMPTS):
        before = live_lease_ids(server)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while live_lease_ids(server) == before:  # granted on the server now
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the checkout was never granted its leases"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stranded = live_lease_ids(server) - recorded()
        if stranded:
            break
    assert stranded, f"no kill in {ATTEMPTS} tries landed before the leases were recorded"

    again = subprocess.run(
        [*annotator_command(), "checkout", "--count", str(len(stranded))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    # Every lease the server holds for this person is on this disk now, none leased anew.
    assert live_lease_ids(server) == recorded()
    assert stranded <= recorded()
    with LocalStore.open() as store:
        assert store.lease_requests() == []  # nothing left in flight
