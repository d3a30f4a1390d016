"""The `annotator` command as an admin runs it, for the ASR tests, and the annotations they
train on."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from api.client import QueueClient
from api.models import AnnotationIn, BatchItem
from tests.asr.test_suggestions import jargon_rows
from tests.fixtures.server import LiveServer, run_annotator


def run(
    *args: str, home: Path, pythonpath: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(pythonpath)} if pythonpath is not None else None
    return run_annotator(*args, home=home, env=env, timeout=timeout)


def db_args(server: LiveServer) -> list[str]:
    return ["--db", server.db, "--data", str(server.data_dir)]


def submit_jargon(client: QueueClient, n: int = 60, seed: int = 11) -> None:
    """Lease `n` clips and annotate them with `jargon_rows(n, seed)`, in one batch."""
    leases = client.lease(count=min(n, 50)).leases
    if n > 50:
        leases += client.lease(count=n - 50).leases
    items = [
        BatchItem(
            idempotency_key=uuid.uuid4().hex,
            annotation=AnnotationIn(
                lease_id=lease.lease_id, fence=lease.fence, transcript=r.text, intent=r.intent
            ),
        )
        for lease, r in zip(leases, jargon_rows(n, seed), strict=True)
    ]
    assert all(r.status_code == 201 for r in client.submit_batch(items).results)
