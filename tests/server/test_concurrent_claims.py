"""100 annotators claim at the same instant against a real server: no clip is leased twice.

On both backends (`backend`), with one and with two worker processes, and on PostgreSQL with the
claims spread across two separate `serve` processes on one database, then every lease submitted
with K = 1: no clip leased twice, none annotated twice.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import LiveServer, open_repo, start_live_server

CLAIMERS = 100


def _all_at_once(servers: list[LiveServer], tokens: list[str], call: Callable[..., object]) -> list:
    """`call(http, token)` for every token at the same instant, token i against server i % n."""
    barrier = threading.Barrier(len(tokens))
    # One thread-safe client per server with a connection per claimer (a client each would spend
    # seconds building SSL contexts); each request carries its own annotator's token.
    limits = httpx.Limits(max_connections=CLAIMERS, max_keepalive_connections=CLAIMERS)
    clients = [httpx.Client(base_url=s.url, timeout=30, limits=limits) for s in servers]
    try:

        def one(i: int) -> object:
            barrier.wait()
            return call(clients[i % len(clients)], tokens[i])

        with ThreadPoolExecutor(len(tokens)) as pool:
            return list(pool.map(one, range(len(tokens))))
    finally:
        for c in clients:
            c.close()


def _claim(http: httpx.Client, token: str, count: int) -> list[dict]:
    r = http.post("/v1/leases", json={"count": count}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()["leases"]


def _claim_all_at_once(servers: list[LiveServer], count: int) -> tuple[list[str], list[list]]:
    tokens = servers[0].new_tokens([f"ann{i:03d}" for i in range(CLAIMERS)])
    results = _all_at_once(servers, tokens, lambda http, t: _claim(http, t, count))
    return tokens, results


def _assert_no_clip_leased_twice(server: LiveServer, leases: list[dict]) -> None:
    per_clip = Counter(lease["clip"]["clip_id"] for lease in leases)
    assert per_clip and max(per_clip.values()) == 1, per_clip.most_common(3)
    assert len({lease["lease_id"] for lease in leases}) == len(leases)
    assert (
        _query(
            server,
            "SELECT clip_id, COUNT(*) FROM leases WHERE released = 0 GROUP BY clip_id"
            " HAVING COUNT(*) > 1",
        )
        == []
    )


def _query(server: LiveServer, sql: str) -> list[tuple]:
    """Read the server's database directly, whichever backend it is."""
    repo = open_repo(server.db, server.data_dir)
    try:
        with repo._read() as conn:
            return [tuple(r) for r in repo._x(conn, sql).fetchall()]
    finally:
        repo.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_more_clips_than_claimers(make_live_server, test_wavs, workers: str) -> None:
    server: LiveServer = make_live_server("--workers", workers)
    server.ingest(test_wavs(150))
    _, results = _claim_all_at_once([server], count=1)
    leases = [lease for got in results for lease in got]
    assert len(leases) == CLAIMERS
    _assert_no_clip_leased_twice(server, leases)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_fewer_clips_than_claimers(make_live_server, test_wavs, workers: str) -> None:
    server: LiveServer = make_live_server("--workers", workers)
    server.ingest(test_wavs(30))
    _, results = _claim_all_at_once([server], count=2)
    leases = [lease for got in results for lease in got]
    assert len(leases) == 30  # every clip leased exactly once, the rest got empty lists
    _assert_no_clip_leased_twice(server, leases)


@pytest.mark.one_backend
def test_two_server_processes_share_one_postgres_queue(
    tmp_path: Path, pg_cluster, test_wavs
) -> None:
    """Two `serve` processes on one PostgreSQL database: 100 simultaneous claims spread across
    them lease each clip once; submitting every lease (K = 1) annotates each clip once, and a
    second round of claims finds nothing left."""
    url = pg_cluster.new_database()
    first = start_live_server(tmp_path / "a", db_url=url)
    second = start_live_server(tmp_path / "b", db_url=url)
    try:
        first.ingest(test_wavs(60))
        tokens, results = _claim_all_at_once([first, second], count=1)
        leases = [lease for got in results for lease in got]
        assert len(leases) == 60
        _assert_no_clip_leased_twice(first, leases)

        def submit(http: httpx.Client, token: str) -> list[int]:
            mine = results[tokens.index(token)]
            codes = []
            for lease in mine:
                body = {
                    "lease_id": lease["lease_id"],
                    "fence": lease["fence"],
                    "transcript": "wake me up at seven",
                    "intent": "alarm_set",
                }
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                codes.append(http.post("/v1/annotations", json=body, headers=headers).status_code)
            return codes

        # Each annotator submits through the OTHER process than the one that leased.
        codes = _all_at_once([second, first], tokens, submit)
        assert Counter(c for got in codes for c in got) == {201: 60}
        assert (
            _query(first, "SELECT clip_id FROM annotations GROUP BY clip_id HAVING COUNT(*) > 1")
            == []
        )
        assert _query(first, "SELECT COUNT(*), SUM(completed) FROM clips") == [(60, 60)]
        _, again = _claim_all_at_once([first, second], count=1)
        assert all(got == [] for got in again)
    finally:
        first.stop()
        second.stop()
