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
    barrier = threading.Barrier(CLAIMERS)
    # One thread-safe client with a connection per claimer (a client each would spend seconds
    # building SSL contexts); each request carries its own annotator's token.
    limits = httpx.Limits(max_connections=CLAIMERS, max_keepalive_connections=CLAIMERS)
    with httpx.Client(base_url=server.url, timeout=30, limits=limits) as http:

        def claim(token: str) -> list[dict]:
            headers = {"Authorization": f"Bearer {token}"}
            barrier.wait()
            r = http.post("/v1/leases", json={"count": count}, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()["leases"]

        with ThreadPoolExecutor(CLAIMERS) as pool:
            results = list(pool.map(claim, tokens))
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
