"""SQLite's group commit flushes its WAL apart from the COMMIT (`api.server.group_commit`) while
the loop has other requests to serve: the receipt waits for that flush, the flush is an fdatasync
of this database's WAL file, a flush that fails loses nothing (a retry is answered from what was
committed), and submits that arrive while a flush runs form the next group. A submit with nothing
else in flight runs the same flush on the loop. A real SQLite repository and the real app, called
through ASGI; the other request is a lease whose body is still arriving (a slow link); only the
flush is held or failed, on the repository instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.models import Role
from api.server.app import create_app
from api.server.clock import FakeClock
from api.server.settings import ServerSettings
from api.server.sqlite_repo import SqliteRepository
from tests.fixtures.server import ingest_into, write_wavs

pytestmark = pytest.mark.one_backend  # the flush is taken apart on SQLite only


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, SqliteRepository, str]]:
    db = tmp_path / "q.db"
    ingest_into(db, tmp_path / "data", write_wavs(tmp_path / "wavs", 8))
    settings = ServerSettings(db_path=db, data_dir=tmp_path / "data", gold_rate=0)
    repo = SqliteRepository(db, tmp_path / "data")
    token = repo.create_token("ann", Role.ANNOTATOR)
    try:
        yield create_app(settings, clock=FakeClock(), repo=repo), repo, token
    finally:
        repo.close()


def _client(app: Any, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://queue",
        headers={"Authorization": f"Bearer {token}"},
    )


async def _lease(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.post("/v1/leases", json={"count": 1})
    assert r.status_code == 200, r.text
    lease: dict[str, Any] = r.json()["leases"][0]
    return lease


async def _submit(client: httpx.AsyncClient, lease: dict[str, Any], key: str) -> httpx.Response:
    body = {
        "lease_id": lease["lease_id"],
        "fence": lease["fence"],
        "transcript": "turn the lights off",
        "intent": "weather_query",
        "flags": [],
    }
    return await client.post("/v1/annotations", json=body, headers={"Idempotency-Key": key})


@contextlib.asynccontextmanager
async def _another_request_in_flight(app: Any, token: str) -> AsyncIterator[None]:
    """A lease request whose body is still arriving while the block runs: the loop is serving
    it, so a flush in the block goes to the thread."""
    arrived = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"count": '
        await arrived.wait()
        yield b"1}"

    in_flight = app.state.service.in_flight
    async with _client(app, token) as client:
        slow = asyncio.create_task(
            client.post(
                "/v1/leases", content=slow_body(), headers={"Content-Type": "application/json"}
            )
        )
        for _ in range(200):
            if in_flight.count():
                break
            await asyncio.sleep(0.01)
        assert in_flight.count() == 1
        try:
            yield
        finally:
            arrived.set()
            r = await asyncio.wait_for(slow, 10)
            assert r.status_code == 200, r.text
    assert in_flight.count() == 0


def _committed(db: Path) -> int:
    """Annotations a second connection sees: what has been committed."""
    with sqlite3.connect(db) as other:
        return int(other.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])


def _hold(repo: SqliteRepository, before: Callable[[], None]) -> None:
    real = repo.sync_commits

    def held() -> None:
        before()
        real()

    repo.sync_commits = held  # type: ignore[method-assign]


def test_a_receipt_waits_for_the_flush_of_its_commit(
    world: tuple[Any, SqliteRepository, str],
) -> None:
    app, repo, token = world
    release = threading.Event()
    committed_at_flush: list[int] = []

    def before() -> None:
        committed_at_flush.append(_committed(repo.db_path))
        release.wait(10)

    _hold(repo, before)

    async def run() -> None:
        async with _client(app, token) as client, _another_request_in_flight(app, token):
            lease = await _lease(client)
            submit = asyncio.create_task(_submit(client, lease, uuid.uuid4().hex))
            await asyncio.sleep(0.3)
            assert not submit.done(), "the receipt left before its commit was flushed"
            # The loop serves other requests meanwhile: nothing waits behind the flush.
            other = await asyncio.wait_for(_lease(client), 2)
            assert other["lease_id"] != lease["lease_id"]
            release.set()
            r = await asyncio.wait_for(submit, 10)
            assert r.status_code == 201, r.text

    asyncio.run(run())
    assert committed_at_flush == [1]  # the flush came after the COMMIT it makes durable


def test_the_flush_is_an_fdatasync_of_this_databases_wal(
    world: tuple[Any, SqliteRepository, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, repo, token = world
    synced: list[str] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        real(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fdatasync", spy)

    async def run() -> None:
        async with _client(app, token) as client, _another_request_in_flight(app, token):
            lease = await _lease(client)
            assert synced == []  # a claim is not flushed (synchronous = NORMAL)
            r = await _submit(client, lease, uuid.uuid4().hex)
            assert r.status_code == 201, r.text
            assert synced == [str(repo.db_path) + "-wal"]

    asyncio.run(run())


@pytest.mark.parametrize("on_the_thread", [True, False], ids=["thread", "loop"])
def test_a_failed_flush_fails_the_request_and_its_retry_gets_the_receipt(
    world: tuple[Any, SqliteRepository, str], on_the_thread: bool
) -> None:
    app, repo, token = world
    failures = [OSError(errno.EIO, "Input/output error")]

    def before() -> None:
        if failures:
            raise failures.pop()

    _hold(repo, before)
    key = uuid.uuid4().hex

    async def run() -> None:
        async with (
            _client(app, token) as client,
            _another_request_in_flight(app, token) if on_the_thread else contextlib.nullcontext(),
        ):
            lease = await _lease(client)
            r = await _submit(client, lease, key)
            assert r.status_code == 500, r.text
            assert "Input/output" not in r.text  # the catch-all's answer, no exception text
            again = await _submit(client, lease, key)  # the client's outbox retries
            assert again.status_code == 200, again.text  # a replay: the stored receipt
            assert _committed(repo.db_path) == 1  # one annotation: nothing lost, none doubled

    asyncio.run(run())


def test_submits_that_arrive_during_a_flush_form_the_next_group(
    world: tuple[Any, SqliteRepository, str],
) -> None:
    app, repo, token = world
    release = threading.Event()
    groups: list[int] = []
    real_submit_many = repo.submit_many

    def counted(items: Any, now: Any, *, sync: bool = True) -> Any:
        groups.append(len(items))
        return real_submit_many(items, now, sync=sync)

    repo.submit_many = counted  # type: ignore[method-assign]
    _hold(repo, lambda: release.wait(10))

    async def run() -> None:
        async with _client(app, token) as client, _another_request_in_flight(app, token):
            leases = [await _lease(client) for _ in range(4)]
            first = asyncio.create_task(_submit(client, leases[0], uuid.uuid4().hex))
            await asyncio.sleep(0.2)
            rest = [
                asyncio.create_task(_submit(client, lease, uuid.uuid4().hex))
                for lease in leases[1:]
            ]
            await asyncio.sleep(0.2)
            assert groups == [1], "a group was committed while the last flush was running"
            release.set()
            answers = await asyncio.wait_for(asyncio.gather(first, *rest), 10)
            assert [a.status_code for a in answers] == [201] * 4

    asyncio.run(run())
    assert groups == [1, 3]


def test_a_submit_with_nothing_else_in_flight_flushes_on_the_loop(
    world: tuple[Any, SqliteRepository, str],
) -> None:
    app, repo, token = world
    flushed_on: list[str] = []
    real = repo.sync_commits

    def sync_commits() -> None:
        flushed_on.append(threading.current_thread().name)
        real()

    repo.sync_commits = sync_commits  # type: ignore[method-assign]

    async def run() -> None:
        loop_thread = threading.current_thread().name
        async with _client(app, token) as client:
            lease = await _lease(client)
            r = await _submit(client, lease, uuid.uuid4().hex)  # an idle annotator's submit
            assert r.status_code == 201, r.text
            assert flushed_on == [loop_thread]  # no hop to the thread
            async with _another_request_in_flight(app, token):
                lease = await _lease(client)
                r = await _submit(client, lease, uuid.uuid4().hex)
                assert r.status_code == 201, r.text
            assert flushed_on[1].startswith("annotator-commit-sync")

    asyncio.run(run())
    assert _committed(repo.db_path) == 2
