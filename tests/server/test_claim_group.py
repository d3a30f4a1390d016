"""Claims that arrive in one event-loop turn share one SQLite transaction
(`api.server.claim_group`): one BEGIN and one COMMIT for the group, a savepoint per write, each
claim's answer what it would have been alone, a refusal failing only its own request, and an
unexpected failure rolling the group back so that each claim runs again alone. A real SQLite
repository and the real app, called through ASGI; the statements counted with SQLite's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.models import Role
from api.server.app import create_app
from api.server.clock import FakeClock
from api.server.settings import ServerSettings
from api.server.sqlite_repo import SqliteRepository
from tests.fixtures.server import claims_at_once, ingest_into, sqlite_statements, write_wavs

# The statements are counted with SQLite's trace; PostgreSQL's groups: test_pg_claim_group.py.
pytestmark = pytest.mark.one_backend

PEOPLE = ("ann", "bob", "cat", "dan", "eve")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, SqliteRepository, dict[str, str]]]:
    db = tmp_path / "q.db"
    ingest_into(db, tmp_path / "data", write_wavs(tmp_path / "wavs", 12))
    settings = ServerSettings(
        db_path=db, data_dir=tmp_path / "data", gold_rate=0, max_live_leases=2
    )
    repo = SqliteRepository(db, tmp_path / "data")
    tokens = {name: repo.create_token(name, Role.ANNOTATOR) for name in PEOPLE}
    try:
        yield create_app(settings, clock=FakeClock(), repo=repo), repo, tokens
    finally:
        repo.close()


def _leases(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as other:
        return [(r[0], r[1]) for r in other.execute("SELECT annotator, clip_id FROM leases")]


def _first_word(statements: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in statements]


def test_claims_of_one_turn_share_one_transaction(
    world: tuple[Any, SqliteRepository, dict[str, str]],
) -> None:
    app, repo, tokens = world
    asyncio.run(claims_at_once(app, tokens, ["ann"]))  # warm: tokens cached, statements prepared
    statements = sqlite_statements(repo)
    answers = asyncio.run(claims_at_once(app, tokens, ["bob", "cat", "dan", "eve"]))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    words = _first_word(statements)
    assert words.count("BEGIN") == 1 and words.count("COMMIT") == 1, words
    assert words.count("SAVEPOINT") == 4
    clips = [a.json()["leases"][0]["clip"]["clip_id"] for a in answers]
    assert len(set(clips)) == 4  # no clip leased twice within the group
    held = _leases(repo.db_path)
    assert len(held) == 5  # ann's and the group's four, all committed
    assert set(zip(["bob", "cat", "dan", "eve"], clips, strict=True)) <= set(held)


def test_a_refusal_in_a_group_fails_only_its_own_claim(
    world: tuple[Any, SqliteRepository, dict[str, str]],
) -> None:
    app, repo, tokens = world
    asyncio.run(claims_at_once(app, tokens, ["ann", "ann"]))  # ann is at her cap of 2
    before = _leases(repo.db_path)
    statements = sqlite_statements(repo)
    answers = asyncio.run(claims_at_once(app, tokens, ["bob", "ann", "cat"]))
    assert [a.status_code for a in answers] == [200, 409, 200], [a.text for a in answers]
    assert answers[1].json()["reason"] == "lease_cap"
    assert _first_word(statements).count("COMMIT") == 1
    after = _leases(repo.db_path)
    assert len(after) == len(before) + 2
    assert [who for who, _ in after].count("ann") == 2  # the refused claim left nothing


def test_an_unexpected_failure_reruns_each_claim_alone(
    world: tuple[Any, SqliteRepository, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, repo, tokens = world
    service = app.state.service
    real = service.claim

    def failing_for_cat(who: Any, *args: Any) -> Any:
        if who.name == "cat":
            raise RuntimeError("a fault the database cannot be made to produce")
        return real(who, *args)

    monkeypatch.setattr(service, "claim", failing_for_cat)
    statements = sqlite_statements(repo)
    answers = asyncio.run(claims_at_once(app, tokens, ["bob", "cat", "dan"]))
    assert [a.status_code for a in answers] == [200, 500, 200], [a.text for a in answers]
    words = _first_word(statements)
    assert words.count("ROLLBACK") >= 1  # the group's transaction, with bob's first lease
    held = _leases(repo.db_path)
    assert sorted(who for who, _ in held) == ["bob", "dan"]  # one lease each: no doubles
    assert len({clip for _, clip in held}) == 2


def test_a_group_whose_transaction_fails_runs_each_claim_alone(
    world: tuple[Any, SqliteRepository, dict[str, str]],
) -> None:
    app, repo, tokens = world

    @contextlib.contextmanager
    def busy() -> Iterator[None]:
        raise sqlite3.OperationalError("database is locked")  # BEGIN IMMEDIATE timed out
        yield

    app.state.service.claims.shared = busy

    async def run() -> list[httpx.Response]:
        return await asyncio.wait_for(claims_at_once(app, tokens, ["bob", "cat", "dan"]), 10)

    answers = asyncio.run(run())
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    assert sorted(who for who, _ in _leases(repo.db_path)) == ["bob", "cat", "dan"]
