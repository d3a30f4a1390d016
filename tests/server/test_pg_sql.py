"""`postgres_repo.pg_sql`: our SQL as psycopg sends it. Whitespace is squeezed outside string
literals only, and the longest statement of the hot path, the claim with every option (welfare
gate, live-lease cap, replay key), fits psycopg's cache of parsed statements: a longer one is
parsed again on every lease request (~200 µs of the server's CPU each, measured)."""

from __future__ import annotations

from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS

from api.server.postgres_repo import _CLAIM_SQL, pg_sql
from api.server.sql_repo import SqlRepository
from api.server.welfare import LOOKBACK_S
from api.server.welfare_store import WelfareStore


def test_whitespace_is_squeezed_outside_literals_only() -> None:
    sql = "SELECT  a,\n       b\n  FROM t WHERE c = 'two  spaces' AND d = 'it''s  x' AND e = ?"
    assert pg_sql(sql) == (
        "SELECT a, b FROM t WHERE c = 'two  spaces' AND d = 'it''s  x' AND e = %s"
    )


def test_the_claim_with_every_option_fits_psycopgs_statement_cache() -> None:
    gate = WelfareStore.claim_gate("someone", 1.0e9, 3, 900.0, 7200.0, LOOKBACK_S)
    head, head_params = SqlRepository.claim_head("someone", 1.0e9, 2, gate, "request-key")
    sql = pg_sql(_CLAIM_SQL.replace("{head}", head))
    # The claim's own parameters after the head's (postgres_repo._claim_rows): 12.
    assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH, len(sql.encode())
    assert len(head_params) + 12 <= MAX_CACHED_STATEMENT_PARAMS
    assert sql.count("%s") == len(head_params) + 12
    assert "--" not in sql  # a comment would swallow the rest of the squeezed line
