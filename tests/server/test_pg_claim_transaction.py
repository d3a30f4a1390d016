"""A lone PostgreSQL claim is the pipeline's implicit transaction (`PostgresRepository._write`
with `implicit`): no BEGIN or COMMIT is sent, yet it waits for another process's claim of the
same person before it counts against the cap, an error in the middle leaves nothing behind,
and a Sync in the middle is refused rather than committing half of it. A real PostgreSQL
server; the other process is another connection.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from api.server.errors import Rejection
from api.server.postgres_repo import PostgresRepository

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CAP = 3


def _live(url: str, who: str) -> int:
    with psycopg.connect(url) as other:
        row = other.execute(
            "SELECT COUNT(*) FROM leases WHERE annotator = %s AND released = 0", (who,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_claim_sends_no_begin_or_commit(
    pg_queue: tuple[PostgresRepository, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, url = pg_queue
    sent: list[str] = []
    real = psycopg.Connection.execute

    def traced(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query).split()[0].upper())
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", traced)
    (grant,) = repo.claim("ann", 1, 600, NOW, max_live=CAP)
    monkeypatch.undo()
    assert "BEGIN" not in sent and "COMMIT" not in sent, sent
    assert _live(url, "ann") == 1  # committed all the same, at the pipeline's Sync
    assert grant.fence == 1


def test_a_claim_waits_for_the_persons_lock_before_it_counts(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    # Another process's claim of the same person, not yet committed: it holds the person's
    # lock and its lease is not visible. Ours must wait for that lock, then count that lease
    # (the cap of 1 is reached) — not count 0 and lease a second clip past the cap.
    repo, url = pg_queue
    with psycopg.connect(url) as other:
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended('ann', 0))")
        other.execute(
            "INSERT INTO leases (lease_id, clip_id, annotator, fence, created_at, expires_at)"
            " SELECT 'theirs', clip_id, 'ann', 1, %s, %s FROM clips ORDER BY seq LIMIT 1",
            (NOW.timestamp(), NOW.timestamp() + 600),
        )
        outcome: list[object] = []
        ours = threading.Thread(
            target=lambda: outcome.append(_claim_or_refusal(repo, max_live=1)), daemon=True
        )
        ours.start()
        ours.join(0.5)
        assert ours.is_alive() and not outcome  # waiting for the lock
        other.commit()
    ours.join(10)
    assert outcome == ["lease_cap"]
    assert _live(url, "ann") == 1


def _claim_or_refusal(repo: PostgresRepository, max_live: int) -> object:
    try:
        return repo.claim("ann", 1, 600, NOW, max_live=max_live)
    except Rejection as e:
        return e.reason


def test_an_error_in_the_claims_transaction_leaves_nothing(
    pg_queue: tuple[PostgresRepository, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, url = pg_queue
    real = PostgresRepository._claim_rows

    def broken(self: PostgresRepository, *args: Any, **kwargs: Any) -> Any:
        real(self, *args, **kwargs)  # the claim statement is queued...
        raise RuntimeError("the process fails before the transaction ends")

    monkeypatch.setattr(PostgresRepository, "_claim_rows", broken)
    with pytest.raises(RuntimeError):
        repo.claim("ann", 1, 600, NOW, max_live=CAP)
    monkeypatch.undo()
    assert _live(url, "ann") == 0  # ...and undone, not committed by the Sync
    (grant,) = repo.claim("ann", 1, 600, NOW, max_live=CAP)  # the connection is sound
    assert grant.fence == 1  # the undone claim's fence bump is gone with it
    assert _live(url, "ann") == 1


def test_a_sync_inside_the_claims_transaction_is_refused(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    repo, url = pg_queue
    with pytest.raises(RuntimeError, match="halfway"), repo._claim_transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(42)")
        repo._settle(conn)
    assert _live(url, "ann") == 0
