"""PostgreSQL's claims of one event-loop turn share one transaction
(`PostgresRepository.shared_writes`, used by `api.server.claim_group`): nothing of a group is
visible to another connection until it commits, a retry in the group is its first attempt's
replay, a lease claimed in a group is submitted at the first try, a refusal undoes only its own
claim, a person lock held by another process fails the group (nothing of it stands) instead of
waiting, and concurrent claims through the app lease each clip once. A real PostgreSQL server;
the other process is another connection.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.models import Role
from api.server.app import create_app
from api.server.clock import FakeClock
from api.server.errors import Rejection
from api.server.postgres_repo import PostgresRepository, _PersonBusy
from api.server.repository import AnnotationContent, Submission, SubmitResult
from api.server.settings import ServerSettings
from tests.fixtures.server import claims_at_once

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _leases(url: str) -> dict[str, int]:
    """Live leases by person, as another connection sees them: what has been committed."""
    with psycopg.connect(url) as other:
        rows = other.execute(
            "SELECT annotator, COUNT(*) FROM leases WHERE released = 0 GROUP BY annotator"
        ).fetchall()
    return {who: int(n) for who, n in rows}


def test_a_group_is_one_transaction(pg_queue: tuple[PostgresRepository, str]) -> None:
    repo, url = pg_queue
    with repo.shared_writes():
        grants = [repo.claim(who, 1, 600, NOW, max_live=2) for who in ("ann", "bob", "cat")]
        assert _leases(url) == {}  # not one of them committed yet
    assert _leases(url) == {"ann": 1, "bob": 1, "cat": 1}
    assert len({g.clip.clip_id for (g,) in grants}) == 3


def test_a_retry_in_the_same_group_reads_its_first_attempts_leases(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    repo, url = pg_queue
    with repo.shared_writes():
        (first,) = repo.claim("ann", 1, 600, NOW, max_live=2, request_key="req-1")
        (again,) = repo.claim("ann", 1, 600, NOW, max_live=2, request_key="req-1")
    assert again.lease_id == first.lease_id and again.replayed
    assert _leases(url) == {"ann": 1}


def test_a_lease_claimed_in_a_group_is_submitted_without_a_read(
    pg_queue: tuple[PostgresRepository, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim keeps its rows' version for the submit's guarded write (`GrantedLeases`):
    # written in a savepoint, the rows carry the savepoint's xid, and the claim saw that one.
    repo, _ = pg_queue
    with repo.shared_writes():
        repo.claim("bob", 1, 600, NOW, max_live=2)
        (grant,) = repo.claim("ann", 1, 600, NOW, max_live=2)
    reads: list[int] = []
    real = PostgresRepository._read_for

    def counted(*args: Any) -> Any:
        reads.append(1)
        return real(*args)

    monkeypatch.setattr(PostgresRepository, "_read_for", staticmethod(counted))
    submission = Submission(
        lease_id=grant.lease_id,
        fence=grant.fence,
        idempotency_key="key-1",
        request_hash="hash-1",
        body_json="{}",
        content=AnnotationContent("turn it up", "audio_volume_up", (), None, False),
        active_seconds=3.0,
        taxonomy_version="t1",
    )
    (result,) = repo.submit_many([("ann", submission)], NOW)
    assert isinstance(result, SubmitResult) and not result.replayed
    assert reads == []  # the granted rows' version held: no read, no retry


def test_a_refusal_in_a_group_undoes_only_its_own_claim(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    repo, url = pg_queue
    with repo.shared_writes():
        repo.claim("ann", 1, 600, NOW, max_live=1)
        with pytest.raises(Rejection) as refused:
            repo.claim("ann", 1, 600, NOW, max_live=1)
        assert refused.value.reason == "lease_cap"
        repo.claim("bob", 1, 600, NOW, max_live=1)
    assert _leases(url) == {"ann": 1, "bob": 1}


def test_a_person_lock_held_elsewhere_fails_the_group_and_nothing_stands(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    repo, url = pg_queue
    with psycopg.connect(url) as other:  # another process, in the middle of ann's claim
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended('ann', 0))")
        with pytest.raises(_PersonBusy), repo.shared_writes():
            repo.claim("bob", 1, 600, NOW, max_live=2)
            repo.claim("ann", 1, 600, NOW, max_live=2)  # did not wait for the lock
        assert _leases(url) == {}  # bob's claim was rolled back with the group
        other.execute("COMMIT")
    (grant,) = repo.claim("ann", 1, 600, NOW, max_live=2)  # alone, as the group reruns it
    assert _leases(url) == {"ann": 1}
    assert grant.fence >= 1


def test_claims_sent_together_through_the_app_lease_each_clip_once(
    pg_queue: tuple[PostgresRepository, str], tmp_path: Path
) -> None:
    repo, url = pg_queue
    people = ["ann", "bob", "cat", "dan", "eve"]
    tokens = {who: repo.create_token(who, Role.ANNOTATOR) for who in people}
    settings = ServerSettings(
        db_url=url, data_dir=tmp_path / "data", gold_rate=0, max_live_leases=2
    )
    groups: list[int] = []
    real = repo.shared_writes

    def counted() -> Any:
        groups.append(1)
        return real()

    repo.shared_writes = counted  # type: ignore[method-assign]
    app: Any = create_app(settings, clock=FakeClock(), repo=repo)
    order = people * 3  # the third claim of each person is over the cap of 2

    answers = asyncio.run(claims_at_once(app, tokens, order))
    assert [r.status_code for r in answers] == [200] * 10 + [409] * 5, [r.text for r in answers]
    with psycopg.connect(url) as other:
        row = other.execute("SELECT COUNT(*), COUNT(DISTINCT clip_id) FROM leases").fetchone()
    assert row == (10, 10)  # no clip leased twice
    assert _leases(url) == dict.fromkeys(people, 2)
    assert groups, "the claims were not grouped"
