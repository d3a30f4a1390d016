"""Intent models live in the queue's database: two `serve` processes on one database suggest from
the same version, and both pick up a version `annotator asr train` stores, without a restart,
within RELOAD_SECONDS."""

from __future__ import annotations

import time
from pathlib import Path

from api.client import QueueClient
from api.models import ReleaseReason
from api.server.intents.suggester import RELOAD_SECONDS
from tests.asr.support import db_args, run, submit_jargon
from tests.fixtures.postgres import TempCluster
from tests.fixtures.server import LiveServer, open_repo, start_live_server, write_wavs

#: A deployment's jargon for turning a light on, which the shipped descriptions do not hold.
DRAFT = "flick the glow loft"
LEARNT = "iot_hue_lighton"


def _top(client: QueueClient) -> str:
    """The first suggestion on a leased drafted clip (the lease is given back at once)."""
    lease = client.lease(count=1).leases[0]
    client.release(lease.lease_id, ReleaseReason.UNUSED)
    assert lease.clip.asr_hint == DRAFT
    return lease.clip.suggested_intents[0]


def test_servers_on_one_database_serve_the_stored_version_without_restart(
    pg_cluster: TempCluster, tmp_path: Path
) -> None:
    """PostgreSQL: the database several hosts share (the store itself is tested on both
    backends in test_suggestions.py)."""
    a = start_live_server(
        tmp_path / "a", "--max-live-leases", "100", db_url=pg_cluster.new_database()
    )
    b = LiveServer(root=tmp_path / "b", extra_args=a.extra_args, db_url=a.db)
    b.root.mkdir()
    try:
        b.start()
        ids = a.ingest(write_wavs(tmp_path / "in", 62))
        client = QueueClient(a.url, a.annotator_token)
        submit_jargon(client)
        repo = open_repo(a.db, a.data_dir)
        try:
            for clip_id in ids[60:]:
                assert repo.set_draft(clip_id, DRAFT, [(w, 0.9) for w in DRAFT.split()])
        finally:
            repo.close()
        clients = [client, QueueClient(b.url, a.annotator_token)]
        before = [_top(c) for c in clients]
        assert before[0] == before[1] != LEARNT  # both on the cold start

        done = run("asr", "train", *db_args(a), home=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "intent model v1" in done.stderr and "deployed" in done.stderr
        trained_at = time.monotonic()
        picked_up: list[float] = []
        for c in clients:  # each process on its own: neither was restarted
            while _top(c) != LEARNT:
                assert time.monotonic() - trained_at < RELOAD_SECONDS + 5, "not picked up"
                time.sleep(0.5)
            picked_up.append(time.monotonic() - trained_at)
        assert max(picked_up) <= RELOAD_SECONDS + 5
        status = run("asr", "status", *db_args(a), home=tmp_path)
        assert "trained model v1" in status.stdout
    finally:
        b.stop()
        a.stop()
