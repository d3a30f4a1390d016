"""A lone PostgreSQL claim is one autocommit statement (`postgres_repo._locked_claim_head`):
nothing else is sent, yet it waits for another process's claim of the same person before it
counts against the cap, and a retry waits for the request it repeats and is answered with that
request's leases. A real PostgreSQL server; the other process is another connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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


def test_a_lone_claim_is_one_statement(
    pg_queue: tuple[PostgresRepository, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, url = pg_queue
    sent: list[str] = []
    real = psycopg.Connection.execute

    def traced(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(" ".join(str(query).split()[:3]).upper())
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", traced)
    (grant,) = repo.claim("ann", 1, 600, NOW, max_live=CAP, request_key="k1")
    monkeypatch.undo()
    assert sent == ["WITH HEAD AS"], sent
    assert _live(url, "ann") == 1  # committed: its own transaction
    assert grant.fence == 1


def _behind_their_claim(
    repo: PostgresRepository, url: str, request_key: str | None, ours: Callable[[], object]
) -> object:
    """Run `ours` while another process's claim of 'ann' (lease 'theirs', with `request_key`)
    holds the person's lock, not yet committed: `ours` must still be waiting half a second on,
    and end once that claim commits. What `ours` returned."""
    with psycopg.connect(url) as other:
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended('ann', 0))")
        other.execute(
            "INSERT INTO leases (lease_id, clip_id, annotator, fence, created_at, expires_at,"
            " request_key) SELECT 'theirs', clip_id, 'ann', 1, %s, %s, %s"
            " FROM clips ORDER BY seq LIMIT 1",
            (NOW.timestamp(), NOW.timestamp() + 600, request_key),
        )
        outcome: list[object] = []
        waiting = threading.Thread(target=lambda: outcome.append(ours()), daemon=True)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not outcome  # waiting for the lock
        other.commit()
    waiting.join(10)
    assert len(outcome) == 1, "still waiting after the other claim committed"
    return outcome[0]


def test_a_claim_waits_for_the_persons_lock_before_it_counts(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    # Another process's claim of the same person, not yet committed: it holds the person's
    # lock and its lease is not visible. Ours must wait for that lock, then count that lease
    # (the cap of 1 is reached) — not count 0 and lease a second clip past the cap.
    repo, url = pg_queue
    assert _behind_their_claim(repo, url, None, lambda: _claim_or_refusal(repo, 1)) == "lease_cap"
    assert _live(url, "ann") == 1


def _claim_or_refusal(repo: PostgresRepository, max_live: int) -> object:
    try:
        return repo.claim("ann", 1, 600, NOW, max_live=max_live)
    except Rejection as e:
        return e.reason


def test_a_retry_waits_for_the_request_it_repeats_and_gets_its_leases(
    pg_queue: tuple[PostgresRepository, str],
) -> None:
    # The first attempt's claim, not yet committed, holds the person's lock; its retry (same
    # Idempotency-Key) must wait for it and answer with its lease, not lease a second clip.
    repo, url = pg_queue
    retried = _behind_their_claim(
        repo, url, "k1", lambda: repo.claim("ann", 1, 600, NOW, max_live=CAP, request_key="k1")
    )
    assert isinstance(retried, list)
    (grant,) = retried
    assert grant.lease_id == "theirs" and grant.replayed
    assert _live(url, "ann") == 1
