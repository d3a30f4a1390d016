"""100 annotators claim at the same instant against a real server: no clip is leased twice."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fixtures.server import LiveServer

CLAIMERS = 100


def _claim_all_at_once(server: LiveServer, count: int) -> list[dict]:
    tokens = server.new_tokens([f"ann{i:03d}" for i in range(CLAIMERS)])
    clients = [
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {t}"}, timeout=30)
        for t in tokens
    ]
    for c in clients:  # open the connections first, so the claims themselves race
        c.get("/v1/health").raise_for_status()
    barrier = threading.Barrier(CLAIMERS)

    def claim(client: httpx.Client) -> list[dict]:
        barrier.wait()
        r = client.post("/v1/leases", json={"count": count})
        assert r.status_code == 200, r.text
        return r.json()["leases"]

    try:
        with ThreadPoolExecutor(CLAIMERS) as pool:
            results = list(pool.map(claim, clients))
    finally:
        for c in clients:
            c.close()
    return [lease for leases in results for lease in leases]


def _assert_no_clip_leased_twice(server: LiveServer, leases: list[dict]) -> None:
    per_clip = Counter(lease["clip"]["clip_id"] for lease in leases)
    assert per_clip and max(per_clip.values()) == 1, per_clip.most_common(3)
    assert len({lease["lease_id"] for lease in leases}) == len(leases)
    with sqlite3.connect(server.db_path) as db:
        rows = db.execute(
            "SELECT clip_id, COUNT(*) FROM leases WHERE released = 0 GROUP BY clip_id"
            " HAVING COUNT(*) > 1"
        ).fetchall()
    assert rows == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_more_clips_than_claimers(make_live_server, test_wavs, workers: str) -> None:
    server: LiveServer = make_live_server("--workers", workers)
    server.ingest(test_wavs(150))
    leases = _claim_all_at_once(server, count=1)
    assert len(leases) == CLAIMERS
    _assert_no_clip_leased_twice(server, leases)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_fewer_clips_than_claimers(make_live_server, test_wavs, workers: str) -> None:
    server: LiveServer = make_live_server("--workers", workers)
    server.ingest(test_wavs(30))
    leases = _claim_all_at_once(server, count=2)
    assert len(leases) == 30  # every clip leased exactly once, the rest got empty lists
    _assert_no_clip_leased_twice(server, leases)
