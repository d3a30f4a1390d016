"""PostgreSQL's lone submit is optimistic (`PostgresRepository.submit_many`): one read without
locks, then its writes guarded by the row versions it read. These tests make the race it guards
against happen — another transaction commits between the read and the writes — on a real
PostgreSQL server, and check that the outcome is the one the locking path gives: a moved row
is read again and decided again, a concurrent submit of the same request is answered as its
replay, and a row that keeps moving falls back to the locks. Nothing is lost or doubled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.server import postgres_repo
from api.server.errors import Rejection
from api.server.repository import AnnotationContent, Submission, SubmitResult
from tests.fixtures.postgres import TempCluster
from tests.fixtures.server import open_repo, queue_of

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path: Path, pg_cluster: TempCluster) -> Iterator[Any]:
    with queue_of(pg_cluster.new_database(), tmp_path) as r:
        yield r


def _submission(lease_id: str, fence: int, key: str = "key-1") -> Submission:
    return Submission(
        lease_id=lease_id,
        fence=fence,
        idempotency_key=key,
        request_hash="hash-1",
        body_json="{}",
        content=AnnotationContent("turn it up", "audio_volume_up", (), None, False),
        active_seconds=3.0,
        taxonomy_version="t1",
    )


def _between_read_and_write(
    monkeypatch: pytest.MonkeyPatch, meddle: Callable[[], None], times: int
) -> list[int]:
    """Run `meddle` (on its own connection: another transaction, committed) after each of the
    first `times` optimistic reads, before their writes; the list counts the decisions made."""
    decided: list[int] = []
    real = postgres_repo.submit_decision

    def decision(*args: Any) -> Any:
        decided.append(1)
        out = real(*args)
        if len(decided) <= times:
            meddle()
        return out

    monkeypatch.setattr(postgres_repo, "submit_decision", decision)
    return decided


def test_a_submit_nobody_races_is_decided_once_and_written_at_the_first_try(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (grant,) = repo.claim("ann", 1, 600, NOW)
    decided = _between_read_and_write(monkeypatch, lambda: None, times=0)
    (result,) = repo.submit_many([("ann", _submission(grant.lease_id, grant.fence))], NOW)
    assert isinstance(result, SubmitResult) and not result.replayed
    assert len(decided) == 1
    assert repo.count_annotations("ann") == 1


def test_a_lease_renewed_between_read_and_write_is_read_again_and_accepted(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (grant,) = repo.claim("ann", 1, 600, NOW)
    renewals: list[datetime] = []

    def renew() -> None:  # a renewal writes the lease row: its version moves
        renewals.append(NOW + timedelta(seconds=len(renewals) + 1))
        repo.renew(grant.lease_id, "ann", 600, renewals[-1])

    decided = _between_read_and_write(monkeypatch, renew, times=1)
    (result,) = repo.submit_many([("ann", _submission(grant.lease_id, grant.fence))], NOW)
    assert isinstance(result, SubmitResult) and not result.replayed
    assert len(decided) == 2  # the first write found the lease moved; the second read saw it
    assert repo.count_annotations("ann") == 1


def test_the_same_request_committed_meanwhile_is_answered_as_its_replay(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (grant,) = repo.claim("ann", 1, 600, NOW)
    submission = _submission(grant.lease_id, grant.fence)
    first: list[Any] = []

    def the_retry_lands_first() -> None:  # the same request, by the locking path, committed
        first.extend(postgres_repo.SqlRepository.submit_many(repo, [("ann", submission)], NOW))

    _between_read_and_write(monkeypatch, the_retry_lands_first, times=1)
    (result,) = repo.submit_many([("ann", submission)], NOW)
    assert isinstance(first[0], SubmitResult) and not first[0].replayed
    assert isinstance(result, SubmitResult) and result.replayed
    assert result.annotation.annotation_id == first[0].annotation.annotation_id
    assert repo.count_annotations("ann") == 1


def test_another_request_on_the_clip_committed_meanwhile_is_refused_as_the_rules_say(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (grant,) = repo.claim("ann", 1, 600, NOW)

    def other_key_first() -> None:
        other = _submission(grant.lease_id, grant.fence, key="key-2")
        postgres_repo.SqlRepository.submit_many(repo, [("ann", other)], NOW)

    _between_read_and_write(monkeypatch, other_key_first, times=1)
    (result,) = repo.submit_many([("ann", _submission(grant.lease_id, grant.fence))], NOW)
    # Read again: the lease is released and the clip annotated by this person.
    assert isinstance(result, Rejection) and result.reason == "already_annotated"
    assert repo.count_annotations("ann") == 1


def test_a_row_that_keeps_moving_falls_back_to_the_locking_transaction(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (grant,) = repo.claim("ann", 1, 600, NOW)
    step = iter(range(1, 100))

    def renew() -> None:
        repo.renew(grant.lease_id, "ann", 600, NOW + timedelta(seconds=next(step)))

    decided = _between_read_and_write(monkeypatch, renew, times=100)
    (result,) = repo.submit_many([("ann", _submission(grant.lease_id, grant.fence))], NOW)
    assert isinstance(result, SubmitResult) and not result.replayed
    # Every optimistic try decided and lost (the first also on the granted rows, without a
    # read); the locking path's decision is not counted: nothing can move under its locks.
    assert len(decided) == postgres_repo.OPTIMISTIC_TRIES + 1
    assert repo.count_annotations("ann") == 1


def test_a_group_whose_row_moved_is_done_again_the_locking_way(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = repo.claim("ann", 2, 600, NOW)

    def renew_the_first() -> None:
        repo.renew(first.lease_id, "ann", 600, NOW + timedelta(seconds=1))

    decided = _between_read_and_write(monkeypatch, renew_the_first, times=1)
    items = [
        ("ann", _submission(first.lease_id, first.fence, key="k1")),
        ("ann", _submission(second.lease_id, second.fence, key="k2")),
    ]
    results = repo.submit_many(items, NOW)
    assert [isinstance(r, SubmitResult) and not r.replayed for r in results] == [True, True]
    assert len(decided) == 2  # the group's one optimistic try; the locking way is not counted
    assert repo.count_annotations("ann") == 2


def test_a_group_that_meets_a_concurrent_submit_is_refused_item_by_item_as_the_rules_say(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = repo.claim("ann", 2, 600, NOW)

    def the_first_clip_submitted_meanwhile() -> None:
        other = _submission(first.lease_id, first.fence, key="k-other")
        postgres_repo.SqlRepository.submit_many(repo, [("ann", other)], NOW)

    _between_read_and_write(monkeypatch, the_first_clip_submitted_meanwhile, times=1)
    items = [
        ("ann", _submission(first.lease_id, first.fence, key="k1")),
        ("ann", _submission(second.lease_id, second.fence, key="k2")),
    ]
    one, two = repo.submit_many(items, NOW)
    assert isinstance(one, Rejection) and one.reason == "already_annotated"
    assert isinstance(two, SubmitResult) and not two.replayed
    assert repo.count_annotations("ann") == 2


def test_a_granted_lease_changed_by_another_process_is_read_before_it_is_decided(
    repo: Any, tmp_path: Path, pg_cluster: TempCluster
) -> None:
    """This process remembers the rows its claim left (`GrantedLeases`); another `serve` renewing
    the lease moves them without this one knowing: the write made on the remembered rows is
    refused by its guard, and the submit reads and is accepted, as on any other process."""
    (grant,) = repo.claim("ann", 1, 600, NOW)
    other = open_repo(repo.url, tmp_path / "data")  # a second process's repository
    try:
        other.renew(grant.lease_id, "ann", 600, NOW + timedelta(seconds=5))
    finally:
        other.close()
    (result,) = repo.submit_many([("ann", _submission(grant.lease_id, grant.fence))], NOW)
    assert isinstance(result, SubmitResult) and not result.replayed
    assert repo.count_annotations("ann") == 1
