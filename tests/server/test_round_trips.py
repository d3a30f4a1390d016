"""What one request of an annotator's cycle costs the database, counted on both real backends, so
a change that adds round trips back to the hot paths fails here (timings cannot show it on a
shared machine; counts do).

PostgreSQL: round trips of the server's only pooled connection, from libpq's protocol trace
(`tests.fixtures.round_trips`). SQLite: the statements its connection runs (in process; each
costs a call into SQLite, and the durable ones an fsync). The app is called in process through
ASGI, so nothing else shares the connection while a request is counted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.models import AnnotationIn, Role
from api.server import service as service_module
from api.server.app import create_app
from api.server.clock import FakeClock
from api.server.errors import Rejection
from api.server.repository import Submission, SubmitResult
from api.server.service import QueueService
from api.server.settings import ServerSettings
from tests.fixtures.round_trips import RoundTrips, trace_pooled
from tests.fixtures.server import open_repo, write_wavs

#: Round trips per request on PostgreSQL: BEGIN, the claim and COMMIT go together (the welfare
#: break check and the live-lease cap's count are read by the claim's own statement, and the
#: person's advisory lock travels in the same pipeline); the lease, its clip and the audio are
#: one read; a lone submit is its read, then its writes (one autocommit statement guarded by the
#: row versions it read; in a group: the locking read, then the writes with the COMMIT); a
#: renewal is its read, its write (its count checked before COMMIT) and COMMIT.
PG_BUDGET = {"claim": 1, "audio": 1, "submit": 2, "renew": 3}
#: Statements per request on SQLite (BEGIN IMMEDIATE's busy-timeout PRAGMAs included; a grouped
#: submit commits at NORMAL and its WAL is flushed apart, with no synchronous=FULL/NORMAL
#: PRAGMAs, `api.server.group_commit`); the claim's one read holds the break
#: check, the cap's count and the candidates; a submit's count includes the statements of the
#: quality triggers that mark its clip stale (`api.server.quality_figures`), which SQLite's trace
#: reports as statements of their own.
SQLITE_BUDGET = {"claim": 7, "audio": 1, "submit": 11, "renew": 7}
WARMUP_CYCLES = 7  # psycopg prepares a statement on its 5th use: one extra round trip, once


class _Counter:
    def __init__(self, backend: str, repo: Any) -> None:
        self.backend = backend
        self.statements: list[str] = []
        self.last: list[str] = []  # SQLite: the statements `take` counted
        self.trips: RoundTrips | None = None
        if backend == "postgres":
            self.trips = trace_pooled(repo)
        else:
            repo._conn.set_trace_callback(self.statements.append)

    def take(self) -> int:
        if self.trips is not None:
            return self.trips.take()
        self.last = self.statements[:]
        self.statements.clear()
        return len(self.last)

    def stop(self) -> None:
        if self.trips is not None:
            self.trips.stop()


@pytest.fixture
def world(
    tmp_path: Path, backend: str, new_db_url: Callable[[Path], str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any, str]]:
    # The revocation poll (a read every 0.5 s) would land in whichever request is counted.
    monkeypatch.setattr(service_module, "TOKEN_GENERATION_CHECK_SECONDS", 3600.0)
    url = new_db_url(tmp_path)
    # No gold (its deal is random, so a gold slot would make the counts vary; gold has its own
    # tests in tests/server/test_quality.py).
    settings = ServerSettings(
        db_url=url, db_path=tmp_path / "q.db", data_dir=tmp_path / "data", gold_rate=0
    )
    if backend == "postgres":
        from api.server.postgres_repo import PostgresRepository

        repo: Any = PostgresRepository(url, pool_max=1)  # one connection: the one traced
    else:
        repo = open_repo(settings.database_url, settings.data_dir)
    batcher = repo.batcher()
    from api.server.ingest import ingest_paths

    ingest_paths(
        write_wavs(tmp_path / "wavs", 12),
        locale="en-US",
        asr_hints={},
        add_clip=batcher.add_clip,
        progress=False,
    )
    batcher.flush()
    token = repo.create_token("ann", Role.ANNOTATOR)
    try:
        yield create_app(settings, clock=FakeClock(), repo=repo), repo, token
    finally:
        repo.close()


async def _cycle(client: httpx.AsyncClient, marks: Callable[[str], None] | None = None) -> None:
    def mark(step: str) -> None:
        if marks:
            marks(step)

    # With an Idempotency-Key, as the client sends it: the replay check rides in the claim's
    # transaction (on PostgreSQL in the round trip that reads the live-lease count).
    r = await client.post(
        "/v1/leases", json={"count": 1}, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    mark("claim")
    assert r.status_code == 200, r.text
    lease = r.json()["leases"][0]
    r = await client.post(f"/v1/leases/{lease['lease_id']}/renew", json={})
    mark("renew")
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/leases/{lease['lease_id']}/audio")
    mark("audio")
    assert r.status_code == 200 and r.content
    body = {
        "lease_id": lease["lease_id"],
        "fence": lease["fence"],
        "transcript": "what's the weather tomorrow",
        "intent": "weather_query",
        "flags": [],
    }
    r = await client.post(
        "/v1/annotations", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    mark("submit")
    assert r.status_code == 201, r.text


def test_each_request_of_the_cycle_stays_within_its_budget(
    world: tuple[Any, Any, str], backend: str
) -> None:
    app, repo, token = world
    budget = PG_BUDGET if backend == "postgres" else SQLITE_BUDGET
    seen: dict[str, list[int]] = {step: [] for step in budget}

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://queue", headers=headers
        ) as client:
            for _ in range(WARMUP_CYCLES):
                await _cycle(client)
            counter = _Counter(backend, repo)
            try:
                counter.take()
                for _ in range(3):
                    await _cycle(client, lambda step: seen[step].append(counter.take()))
            finally:
                counter.stop()

    asyncio.run(run())
    assert {step: max(counts) for step, counts in seen.items()} == budget, seen


def test_a_group_of_submits_costs_two_round_trips_each_and_one_commit(
    world: tuple[Any, Any, str], backend: str
) -> None:
    """Group commit (`submit_many`) when two of the group's items are the same request (a
    replay): on PostgreSQL, the locking way (`PostgresRepository._submit_group`), per submission
    its reads and its writes; BEGIN, each SAVEPOINT and RELEASE travel with them, and the group's
    one COMMIT is the last round trip; a refused submission or a replay costs its reads only. On
    both: one transaction, and the outcomes of submitting one by one."""
    app, repo, _ = world
    now = FakeClock().now()
    grants = repo.claim("ann", 3, 300, now)
    service: QueueService = app.state.service

    def sub(i: int, key: str, **change: Any) -> Submission:
        fields = {
            "lease_id": grants[i].lease_id,
            "fence": grants[i].fence,
            "transcript": "play some jazz",
            "intent": "play_music",
            **change,
        }
        return service.submission(key, AnnotationIn.model_validate(fields))

    k0 = uuid.uuid4().hex
    items = [
        ("ann", sub(0, k0)),
        ("ann", sub(1, uuid.uuid4().hex, fence=grants[1].fence + 5)),  # stale: refused
        ("ann", sub(2, uuid.uuid4().hex)),
        ("ann", sub(0, k0)),  # a replay of the first
    ]
    counter = _Counter(backend, repo)
    try:
        counter.take()
        results = repo.submit_many(items, now)
        trips = counter.take()
    finally:
        counter.stop()
    first, stale, third, replay = results
    assert isinstance(first, SubmitResult) and not first.replayed
    assert isinstance(stale, Rejection) and stale.reason == "stale_fence"
    assert isinstance(third, SubmitResult) and not third.replayed
    assert isinstance(replay, SubmitResult) and replay.replayed
    assert replay.annotation.annotation_id == first.annotation.annotation_id
    if backend == "postgres":
        # reads + writes for the two accepted, reads for the refused and the replay, one COMMIT
        assert trips == 2 + 1 + 2 + 1 + 1
    else:
        # one transaction: BEGIN IMMEDIATE (its PRAGMAs) ... one COMMIT, one fsync
        assert [q.split()[0] for q in counter.last].count("COMMIT") == 1
    assert repo.count_annotations("ann") == 2
    # The refused one left its lease live: it can still be submitted.
    assert isinstance(repo.submit_many([("ann", sub(1, uuid.uuid4().hex))], now)[0], SubmitResult)


def test_a_group_of_different_submits_costs_two_round_trips_on_postgresql(
    world: tuple[Any, Any, str], backend: str
) -> None:
    """The usual group (different requests): every item's read at once (none here: the leases
    were granted by this process, `GrantedLeases`), then every accepted item's writes with the
    one COMMIT; a refused item writes nothing, and is decided again from a read."""
    app, repo, _ = world
    now = FakeClock().now()
    grants = repo.claim("ann", 4, 300, now)
    service: QueueService = app.state.service

    def sub(i: int, **change: Any) -> Submission:
        fields = {"lease_id": grants[i].lease_id, "fence": grants[i].fence, **change}
        body = AnnotationIn.model_validate({"transcript": "jazz", "intent": "play_music", **fields})
        return service.submission(uuid.uuid4().hex, body)

    items = [
        ("ann", sub(0)),
        ("ann", sub(1, fence=grants[1].fence + 5)),  # stale: refused
        ("ann", sub(2)),
        ("ann", sub(3)),
    ]
    counter = _Counter(backend, repo)
    try:
        counter.take()
        results = repo.submit_many(items, now)
        trips = counter.take()
    finally:
        counter.stop()
    kinds = [r.reason if isinstance(r, Rejection) else r.replayed for r in results]
    assert kinds == [False, "stale_fence", False, False]
    assert repo.count_annotations("ann") == 3
    if backend == "postgres":
        # The stale one, refused on the granted rows, is read and decided again: one round
        # trip; the writes and the COMMIT the other. All accepted, a group costs one.
        assert trips == 2
    else:
        assert [q.split()[0] for q in counter.last].count("COMMIT") == 1
    # The refused one's lease is still live: it can be submitted.
    assert isinstance(repo.submit_many([("ann", sub(1))], now)[0], SubmitResult)
    assert repo.count_annotations("ann") == 4


def test_a_submit_of_a_lease_this_process_granted_costs_one_round_trip(
    world: tuple[Any, Any, str], backend: str
) -> None:
    """No renewal between the claim and the submit (the usual short clip): the rules decide on
    the rows the claim left (`GrantedLeases`), and the guarded writes are the only round trip;
    a group of such submits is one round trip too."""
    app, repo, _ = world
    now = FakeClock().now()
    service: QueueService = app.state.service

    def submission(grant: Any) -> Submission:
        body = {
            "lease_id": grant.lease_id,
            "fence": grant.fence,
            "transcript": "hi",
            "intent": "play_music",
        }
        return service.submission(uuid.uuid4().hex, AnnotationIn.model_validate(body))

    grants = repo.claim("ann", 4, 300, now)
    counter = _Counter(backend, repo)
    try:
        counter.take()
        (lone,) = repo.submit_many([("ann", submission(grants[0]))], now)
        lone_trips = counter.take()
        group = repo.submit_many([("ann", submission(g)) for g in grants[1:]], now)
        group_trips = counter.take()
    finally:
        counter.stop()
    assert isinstance(lone, SubmitResult) and all(isinstance(r, SubmitResult) for r in group)
    assert repo.count_annotations("ann") == 4
    if backend == "postgres":
        assert (lone_trips, group_trips) == (1, 1)


def test_a_terminated_connection_is_replaced_without_costing_a_round_trip_each_time(
    pg_cluster: Any,
) -> None:
    """The pool's check on checkout pings a connection only when its socket has something to
    read: a backend the database terminated (or a restart) has, so the request after it is
    served on a fresh connection instead of failing with a 503."""
    import time

    import psycopg

    from api.server.postgres_repo import PostgresRepository

    url = pg_cluster.new_database()
    repo = PostgresRepository(url, pool_max=1)
    try:
        token = repo.create_token("ann", Role.ANNOTATOR)
        assert repo.principal_for_token(token) is not None
        with repo.pool.connection() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            deadline = time.monotonic() + 10
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone() != (0,):
                assert time.monotonic() < deadline, "the backend did not go away"
                time.sleep(0.02)
        assert repo.principal_for_token(token) is not None  # no Rejection(503)
        with repo.pool.connection() as conn:
            assert conn.info.backend_pid != pid
    finally:
        repo.close()


def test_durable_transactions_wait_for_the_wal_and_the_others_do_not(pg_cluster: Any) -> None:
    """Sessions run with `synchronous_commit = on` and only non-durable transactions turn it off
    for themselves (renewals, releases), batched or not."""
    from api.server.postgres_repo import PostgresRepository

    repo = PostgresRepository(pg_cluster.new_database(), pool_max=1)
    try:
        for batched in (False, True):
            for durable, expected in ((True, "on"), (False, "off")):
                with repo._write(durable=durable, batched=batched) as conn:
                    shown = conn.execute("SHOW synchronous_commit").fetchone()
                assert shown == (expected,), (durable, batched)
        with repo.pool.connection() as conn:  # a single autocommit statement is durable
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        repo.close()
