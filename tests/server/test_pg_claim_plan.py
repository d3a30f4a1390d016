"""The PostgreSQL claim's cost does not follow the planner's statistics: it is planned once per
connection whatever autovacuum does meanwhile, and it never reads a person's whole history.

PostgreSQL's plan cache chooses per execution between a prepared statement's generic plan and a
fresh custom one; once `clips`'s statistics moved (a VACUUM or ANALYZE, which autovacuum runs all
day on a busy queue) it chose to plan the claim afresh on every lease request: ~0.7 ms of the
database's CPU each, more than the rest of the cycle's database work (notes/pg9e.md). The claim
keeps its generic plan (`postgres_repo._SESSION_SETTINGS`); `pg_prepared_statements` counts, per
connection, which plan each execution ran. Real cycles through the app, on a real server.

The "not annotated by me yet" probe of each candidate clip goes through the unique (clip_id,
annotator) key (`sql_repo.PERSON_PROBE`); written plainly, with statistics that did not yet know
the person's history, it went through `annotations_by_time` and read every annotation the person
ever made, on every claim. `pg_stat_user_indexes` counts the index entries read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from api.models import Role
from api.server.app import create_app
from api.server.postgres_repo import PostgresRepository
from api.server.settings import ServerSettings
from bench.cycle_cost import cycle
from bench.server_bench import _bench_clips
from tests.fixtures.postgres import TempCluster


def _claim_plans(repo: PostgresRepository) -> tuple[int, int]:
    """(generic, custom) plans the claim ran on the repository's one pooled connection."""
    with repo.pool.connection() as conn:
        row = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%%WITH head AS%%'"
        ).fetchone()
    assert row is not None, "the claim was never prepared"
    return int(row[0]), int(row[1])


def test_the_claim_keeps_one_plan_across_vacuums(tmp_path: Path, pg_cluster: TempCluster) -> None:
    url = pg_cluster.new_database()
    repo = PostgresRepository(url, pool_max=1)
    try:
        settings = ServerSettings(db_url=url, data_dir=tmp_path / "data", db_path=tmp_path / "q.db")
        repo.add_clips(_bench_clips(2400))
        token = repo.create_token("ann", Role.ANNOTATOR)
        app: Any = create_app(settings, repo=repo)

        async def cycles(start: int, n: int) -> None:
            for i in range(start, start + n):
                await cycle(app, token, i)

        asyncio.run(cycles(0, 400))
        before = _claim_plans(repo)
        for round_ in range(3):  # what autovacuum does to a worked queue, a few times over
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("VACUUM ANALYZE clips")
                admin.execute("VACUUM ANALYZE leases")
            asyncio.run(cycles(400 + 600 * round_, 600))
        generic, custom = _claim_plans(repo)
        assert generic - before[0] >= 1800, (before, (generic, custom))
        assert custom == before[1], (before, (generic, custom))
    finally:
        repo.close()


def _entries_read(repo: PostgresRepository, index: str) -> int:
    with repo.pool.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, flushed...
        conn.execute("SELECT 1")  # ...as it went idle after the statement before
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = %s", (index,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_claim_does_not_read_the_persons_history(pg_cluster: TempCluster) -> None:
    repo = PostgresRepository(pg_cluster.new_database(), pool_max=1)
    try:
        history = 3000
        repo.add_clips(_bench_clips(20 + history))  # the first 20 are new to "ann"
        repo.create_token("ann", Role.ANNOTATOR)
        row = (
            "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator,"
            " idempotency_key, request_hash, body, transcript, intent, flags, status, escalated,"
            " taxonomy_version, created_at)"
            " SELECT 'a' || seq, clip_id, 'l', 'ann', 'k' || seq, 'h', '{}', 't', 'i', '[]',"
            " 'accepted', 0, 'v', 1.0e9 + seq FROM clips WHERE seq > 20"
        )
        # The claim is planned while the person's history is short (a new database, a new
        # person); the plan it keeps must stay cheap as the history grows.
        with repo._write() as conn:
            repo._x(conn, row + " AND seq <= 30")
        for _ in range(8):
            assert len(repo.claim("ann", 1, 600, datetime.now(UTC), max_live=40)) == 1
        with repo._write() as conn:
            repo._x(conn, row + " AND seq > 30")
        before = _entries_read(repo, "annotations_by_time")
        for _ in range(5):
            now = datetime.now(UTC)
            assert len(repo.claim("ann", 1, 600, now, max_live=40)) == 1
        read = _entries_read(repo, "annotations_by_time") - before
        # The welfare gate's "latest submission" look-ups read an entry or two each claim; the
        # plain probe read all 3,000 (15,000 for the five claims).
        assert read <= 5 * 10, read
    finally:
        repo.close()
