"""The submit's guarded writes on both backends: when the clip or the lease a submit writes has
moved after its reads (the reads lock both rows, so only a bug could get here), the submit is
refused with 409 `stale_fence` and nothing of it is kept — also on PostgreSQL, whose writes go
out with the COMMIT and are checked by `annotator_expect` in the database, not by their counts
before it (`api.server.postgres_repo`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.server import rules
from api.server.errors import Rejection
from api.server.sql_repo import new_id, ts
from tests.fixtures.server import queue_of

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path: Path, new_db_url: Callable[[Path], str]) -> Iterator[Any]:
    with queue_of(new_db_url(tmp_path / "db"), tmp_path) as r:
        yield r


def _leased(repo: Any) -> rules.LeaseRow:
    (grant,) = repo.claim("ann", 1, 600, NOW)
    return rules.LeaseRow(
        grant.lease_id, grant.clip.clip_id, "ann", grant.fence, ts(NOW) + 600, False
    )


def _row(lease: rules.LeaseRow) -> tuple[Any, ...]:
    """The annotation row `_submit_one` would write for `lease`."""
    return (
        new_id(), lease.clip_id, lease.lease_id, "ann", new_id(), "hash", "{}", "hello", "greet",
        json.dumps([]), None, 1.0, "accepted", 0, "t1", ts(NOW),
    )  # fmt: skip


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "in-a-group"])
@pytest.mark.parametrize("moved", ["clip", "lease"])
def test_a_write_whose_row_moved_refuses_the_submit_and_keeps_nothing(
    repo: Any, alone: bool, moved: str
) -> None:
    lease = _leased(repo)
    # The clip's guard is its fence; the lease's is its fence too (a renewal never moves it,
    # a new claim of the clip does): a fence one ahead stands for "someone moved it meanwhile".
    stale = dataclasses.replace(lease, fence=lease.fence + 1)
    with pytest.raises(Rejection) as refused, repo._write(durable=True, batched=True) as conn:
        repo._submit_writes(
            conn,
            _row(lease),
            stale,
            holds_clip=moved == "clip",
            releases=moved == "lease",
            alone=alone,
        )
    assert (refused.value.status_code, refused.value.reason) == (409, "stale_fence")
    assert repo.count_annotations("ann") == 0
    # The connection went back clean and the lease is intact: the true fence goes through.
    with repo._write(durable=True, batched=True) as conn:
        repo._submit_writes(conn, _row(lease), lease, holds_clip=True, releases=True, alone=alone)
    assert repo.count_annotations("ann") == 1
    (again,) = repo.claim("ann", 1, 600, NOW)
    assert again.clip.clip_id != lease.clip_id  # the first clip was completed by that submit
