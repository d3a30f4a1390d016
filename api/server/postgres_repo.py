"""The PostgreSQL backend (psycopg 3 + psycopg-pool): many stateless server processes, one database.

Connections come from a small `ConnectionPool` per process (the event loop uses one at a time;
the export streams on another). Each runs in autocommit mode with explicit BEGIN/COMMIT, READ
COMMITTED, and `synchronous_commit = on` (set by us, whatever the server's default): durable
writes (claims, annotations, amendments, clips, tokens; single autocommit statements such as a
draft) send their answer only once the WAL is flushed, while the transactions that need not be
(`_write(durable=False)`: renewals, releases) set it `off` for themselves, so a database crash
may undo them. On by default because the hot transactions are the durable ones: no SET for
them. Claims are durable because the client acts on them at once: a lease forgotten by a crashed
database would turn the annotation submitted under it into a 404. Group commit still pays: one
flush for the submits that arrived together.

Round trips are what a request costs here (each blocks the event loop), so the hot paths run as
batched transactions (`SqlRepository._write(batched=True)`: pipeline mode, BEGIN sent with the
first statement, COMMIT without waiting for the ones before it): a lone claim is one autocommit
statement (no pipeline: `_locked_claim_head`), a lease's audio one read, a submit two
(`submit_many`: a lone one is optimistic, a read and one guarded write statement; a group's
writes go with its COMMIT, guarded by `annotator_expect`);
`tests/server/test_round_trips.py` holds them to that. Statements cost the database's CPU
whether batched or not, so the hot paths also keep their count down.

Claims are one statement in a transaction of its own, or, when several reach one event-loop turn,
a savepoint each of one transaction (`shared_writes`: one WAL flush for the group, measured +20–30 %
cycles/s at 100 annotators): the clips are picked by `SELECT ... ORDER BY
seq LIMIT n FOR UPDATE SKIP LOCKED` (concurrent claimers, in any process, skip each other's rows
instead of waiting), stamped by the `UPDATE ... RETURNING` around it, and their lease rows
inserted by the same statement. Decisions that read-then-write lock the rows they read
(`FOR UPDATE`), so the rules in `api.server.rules` see the rows they guard. Audio is a `bytea`
row per sha256 in the same database (`PostgresAudioStore`; why in `api.server.audio_store`).

Migrations run under a transaction-level advisory lock, so several processes starting on an
empty database apply each version once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import select
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from api.models import ReleaseReason
from api.server import rules
from api.server.audio_store import AudioMissing
from api.server.errors import Rejection
from api.server.migrations import POSTGRES_MIGRATIONS, SCHEMA_VERSION
from api.server.repository import ExportRow, LeaseStatus, Submission, SubmitResult
from api.server.sql_repo import (
    ANNOTATION_COLUMNS,
    CLAIMABLE_WHERE,
    ClaimGate,
    SqlRepository,
    lease_moved,
    new_id,
    submit_decision,
    ts,
)

log = logging.getLogger("annotator.server")

#: pg_advisory_xact_lock key for migrations ("annotator" in ASCII, truncated to 63 bits).
_MIGRATION_LOCK = 0x616E6E6F7461746F
POOL_MAX = 4
CONNECT_TIMEOUT_S = 10
#: How long a request waits for a pooled connection: a database restart (seconds) is waited out,
#: a longer outage answers 503 well within a client's request timeout.
CHECKOUT_TIMEOUT_S = 5
EXPORT_CHUNK = 500
#: `annotator_expect`'s SQLSTATE (migrations): a guarded write found its row moved.
MOVED_SQLSTATE = "AN409"
#: A lone submit's optimistic tries (`PostgresRepository.submit_many`) before it takes the locks.
OPTIMISTIC_TRIES = 3

#: A lone submit's one read, without locks: always one row (a LEFT JOIN from a constant), holding
#: the annotation already stored under its Idempotency-Key (NULLs when none), then
#: `SUBMIT_READ_COLUMNS` (NULLs when no such lease), then the row versions of the lease and the
#: clip that the writes are guarded by. Params: annotator (the read's own), annotator and key,
#: lease id.
_OPTIMISTIC_READ = (
    "SELECT e.request_hash, "  # noqa: S608 - our own constants
    + ", ".join(f"e.{c.strip()}" for c in ANNOTATION_COLUMNS.split(","))
    + f", {SqlRepository.SUBMIT_READ_COLUMNS}, l.xmin::text, c.xmin::text"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN annotations e ON e.annotator = ? AND e.idempotency_key = ?"
    " LEFT JOIN (leases l JOIN clips c ON c.clip_id = l.clip_id) ON l.lease_id = ?"
).replace("?", "%s")
_ANNOTATION_WIDTH = 1 + len(ANNOTATION_COLUMNS.split(","))

#: The claim, one statement: its head row (`SqlRepository.claim_head`: the gate, the cap's count)
#: decides how many clips it may pick (none when the gate is closed or the cap reached), and is
#: returned with the leased rows (a LEFT JOIN: always one row at least).
_CLAIM_SQL = f"""
WITH head AS ({{head}}
), picked AS (
    SELECT c.seq, row_number() OVER (ORDER BY c.seq) AS n
      FROM (SELECT seq FROM clips AS c
             WHERE {CLAIMABLE_WHERE}
             ORDER BY c.seq
             LIMIT (SELECT CASE WHEN clear = 1 AND replayed = 0
                                THEN LEAST(%s, GREATEST(%s - live, 0)) ELSE 0 END
                      FROM head)
               FOR UPDATE SKIP LOCKED) AS c
), ids AS (
    SELECT id, n FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, n)
), stamped AS (
    UPDATE clips SET fence = clips.fence + 1, current_lease = ids.id, leased_until = %s
      FROM picked JOIN ids USING (n)
     WHERE clips.seq = picked.seq
    RETURNING clips.seq, clips.current_lease, clips.fence, clips.clip_id, clips.duration_s,
              clips.sample_rate, clips.channels, clips.locale, clips.sha256, clips.asr_hint,
              clips.asr_words, clips.completed, clips.needed, clips.xmin::text AS version
), leased AS (
    INSERT INTO leases (lease_id, clip_id, annotator, fence, created_at, expires_at, request_key)
    SELECT current_lease, clip_id, %s, fence, %s, %s, %s FROM stamped
)
SELECT head.clear, head.live, head.replayed, s.current_lease, s.fence, s.clip_id,
       s.duration_s, s.sample_rate, s.channels, s.locale, s.sha256, s.asr_hint, s.asr_words,
       s.completed, s.needed, s.version
  FROM head LEFT JOIN stamped AS s ON true
 ORDER BY s.seq
"""  # noqa: S608 - built from our own constants, not from input


def _locked_claim_head(
    annotator: str,
    t_now: float,
    max_live: int | None,
    gate: ClaimGate | None,
    replay_key: str | None,
) -> tuple[str, tuple[Any, ...]]:
    """`SqlRepository.claim_head` for a lone claim that must be serialised with the person's
    others (a cap, or a retry that must see the leases of the request it repeats), in the claim's
    own statement: `annotator_person_counts` (migration 12) takes the person's advisory lock and
    then counts, each count a query of its own with a snapshot taken after the lock was granted,
    which the claim's statement cannot do (its snapshot is taken before any lock it waits for).
    The rest of the statement may use the earlier snapshot: a clip another claim of the person
    leased meanwhile is a row that changed under `FOR UPDATE SKIP LOCKED`, rechecked against its
    new version (leased: skipped), as for anyone else's claim."""
    gate_sql, params = ("1", ()) if gate is None else (gate.sql, gate.params)
    return (
        f"SELECT {gate_sql} AS clear, pc.live, pc.replayed"  # noqa: S608 - our own gate SQL
        " FROM annotator_person_counts(?::text, ?::float8, ?::text, ?::boolean) AS pc",
        (*params, annotator, t_now, replay_key, max_live is not None),
    )


@functools.cache
def _submit_writes_sql(holds_clip: bool, releases: bool, versioned: bool) -> str:
    """`SqlRepository._submit_writes` as one statement: the annotation row, the clip's completion
    and the lease's release, with `annotator_expect` over the guarded writes' counts in place of
    reading them before COMMIT, so the statement needs no waiting for (it travels with the
    COMMIT, or is its own autocommit transaction). `versioned`: each write is also guarded by the
    row version its decision read without locks (`xmin`: any change to the row makes a new one),
    so it applies only to the rows the rules saw; a moved row raises AN409 and nothing is kept.
    A released lease is final (nothing writes it again): it needs no guard when not written."""
    guard = " AND xmin::text = ?" if versioned else ""
    complete = SqlRepository._COMPLETE_HELD if holds_clip else SqlRepository._COMPLETE
    parts = [
        f"a AS ({SqlRepository._SUBMIT_INSERT} RETURNING 1)",
        f"c AS ({complete}{guard} RETURNING 1)",
    ]
    checks = ["(SELECT count(*) FROM c) = 1"] if holds_clip or versioned else []
    if releases:
        parts.append(f"l AS ({SqlRepository._RELEASE_SUBMITTED}{guard} RETURNING 1)")
        checks.append("(SELECT count(*) FROM l) = 1")
    check = " AND ".join(checks) or "true"
    text = (
        f"WITH {', '.join(parts)} SELECT annotator_expect({check}, 'the lease changed meanwhile')"
    )
    return text.replace("?", "%s")


def _submit_writes_params(
    row_values: tuple[Any, ...],
    lease: rules.LeaseRow,
    holds_clip: bool,
    releases: bool,
    versions: tuple[str, str] | None,
) -> tuple[Any, ...]:
    """`_submit_writes_sql`'s parameters; `versions`: (the lease's, the clip's) when versioned."""
    params = row_values
    params += (lease.clip_id, lease.lease_id, lease.fence) if holds_clip else (lease.clip_id,)
    if versions is not None:
        params += (versions[1],)
    if releases:
        params += (lease.lease_id, lease.fence)
        if versions is not None:
            params += (versions[0],)
    return params


_WHITESPACE = re.compile(r"\s+")


#: Every prepared statement of our connections runs on its generic plan, planned once per
#: connection. PostgreSQL's plan cache otherwise compares the generic plan's estimated cost with
#: the custom plans' and, once the statistics of `clips` move (any VACUUM or ANALYZE, as
#: autovacuum runs all day), judged the claim's generic plan dearer and planned it afresh on
#: every execution: ~0.7 ms of planning per lease request, more than the rest of the cycle's
#: database work together (notes/pg9e.md). The claim is written as index probes whose best order
#: does not depend on the values (see `sql_repo.OPEN_TO_ME_WHERE`), which is what a generic plan
#: can hold. It is the session's setting, not the claim's `SET LOCAL`, because a lone claim is
#: one autocommit statement (`_claim_rows`): a setting made in it would come after its planning.
#: The other statements are key lookups and whole-table reports, for which the generic plan is
#: the one the plan cache settles on anyway after five executions.
_SESSION_SETTINGS = "SET synchronous_commit = on; SET plan_cache_mode = force_generic_plan"


@functools.lru_cache(maxsize=512)
def pg_sql(text: str) -> str:
    """Our `?` SQL as psycopg's `%s`, with runs of whitespace outside string literals made one
    space. Why the second: psycopg keeps a statement's parsed form only for statements up to
    4,096 bytes (`psycopg._queries.MAX_CACHED_STATEMENT_LENGTH`) and parses a longer one again
    on every execution; the claim with the welfare gate is ~4,300 bytes as written (~3,700
    compact), and parsing it cost ~200 µs of this process's CPU per lease request. Like the
    `?` conversion, this relies on our SQL having no `--` comments (a newline ends one) and no
    `?` inside literals; tests/server/test_pg_sql.py checks the claim's."""
    parts = text.split("'")
    # Even parts are outside literals (an escaped quote, '', leaves an empty part inside one).
    parts[::2] = [_WHITESPACE.sub(" ", part) for part in parts[::2]]
    return "'".join(parts).replace("?", "%s")


def _lost_race(e: psycopg.Error) -> bool:
    """An optimistic write met a concurrent one: a guard found its row moved (AN409), or a
    unique index (the same Idempotency-Key, the same person on the same clip) got in first."""
    return isinstance(e, psycopg.IntegrityError) or e.sqlstate == MOVED_SQLSTATE


@contextlib.contextmanager
def _moved_refused() -> Iterator[None]:
    """A guarded write's error (`annotator_expect`) as the refusal it stands for."""
    try:
        yield
    except psycopg.Error as e:
        if e.sqlstate != MOVED_SQLSTATE:
            raise
        raise lease_moved() from None


class GrantedLeases:
    """The leases this process granted, each with the rows of a submit's read as its claim left
    them (`SUBMIT_READ_COLUMNS`) and their row version (the claim's transaction wrote both the
    lease and the clip, so one xid is the version of each). A submit of such a lease needs no
    read: the rules decide on these rows, and its writes are guarded by that version, so they
    apply only when both rows are still exactly so (a renewal, a release, an expiry's re-lease or
    a crash of the claim's COMMIT moves or removes them: the write is refused and the submit
    reads as usual). A replay or a second annotation of the clip meets a unique index the same
    way. Nothing here decides anything on its own: a process that never saw the grant (another
    `serve`, a restart) simply reads. Bounded: the oldest are forgotten first."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._rows: OrderedDict[str, tuple[tuple[Any, ...], str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, lease_id: str, row: tuple[Any, ...], version: str) -> None:
        with self._lock:
            self._rows[lease_id] = (row, version)
            while len(self._rows) > self.LIMIT:
                self._rows.popitem(last=False)

    def take(self, lease_id: str) -> tuple[tuple[Any, ...], str] | None:
        with self._lock:
            return self._rows.pop(lease_id, None)


class _Raced(Exception):
    """An optimistic write lost to a concurrent one: read and decide again."""


class DatabaseUnavailable(RuntimeError):
    """The PostgreSQL server cannot be reached or refused us."""


def redact(url: str) -> str:
    """`url` without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://?"
    host, port, db = info.get("host", ""), info.get("port", ""), info.get("dbname", "")
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}{':' + str(port) if port else ''}/{db}"


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    conn.execute(_SESSION_SETTINGS)  # no parameters: the simple protocol takes both


def check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check on checkout, without psycopg_pool's round trip (an empty query) on every
    request: an idle connection has nothing to read unless the server sent something — above all
    the error and end of file of a backend that was terminated or a database that restarted —
    so only a connection whose socket is readable (or is already broken) is pinged, which then
    raises and has the pool replace it."""
    if not conn.closed and not conn.broken:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if not readable:
            return
    ConnectionPool.check_connection(conn)


class PostgresAudioStore:
    """Clip audio as `bytea` rows in the queue's own database: every process on every host sees
    it, and `pg_dump` backs it up with the queue."""

    def __init__(self, repo: PostgresRepository) -> None:
        self.repo = repo

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        if not items:
            return
        with self.repo._write(durable=True) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO audio (sha256, data) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING",
                list(items),
            )

    def delete(self, sha256: str) -> None:
        with self.repo._write(durable=True) as conn:
            conn.execute("DELETE FROM audio WHERE sha256 = %s", (sha256,))

    def read(self, sha256: str) -> bytes:
        with self.repo._read() as conn:
            row = conn.execute("SELECT data FROM audio WHERE sha256 = %s", (sha256,)).fetchone()
        if row is None:
            raise AudioMissing(sha256)
        return bytes(row[0])


@dataclass(slots=True)
class _Shared:
    """An open `shared_writes` block: the thread it belongs to, its connection, and the
    person locks its claims tried to take (`pg_try_advisory_xact_lock`'s answers)."""

    thread: int
    conn: psycopg.Connection[Any]
    locks: list[psycopg.Cursor[Any]] = field(default_factory=list)


class _PersonBusy(Exception):
    """In a shared transaction, a person's claim lock is held elsewhere: waiting for it while
    holding the group's locks could deadlock with that holder, so the group runs alone."""


class PostgresRepository(SqlRepository):
    KIND = "postgresql"
    shares_writes = True
    FOR_UPDATE = " FOR UPDATE"
    # The audio's bytes come with the lease (one round trip; see `SqlRepository.lease_audio`).
    _LEASE_AUDIO = (
        "SELECT l.lease_id, l.clip_id, l.annotator, l.fence, l.expires_at, l.released,"
        " c.sha256, c.media_type, a.data, l.created_at, c.audio_deleted_at"
        " FROM leases l JOIN clips c ON c.clip_id = l.clip_id"
        " LEFT JOIN audio a ON a.sha256 = c.sha256 WHERE l.lease_id = %s"
    )

    def __init__(
        self,
        url: str,
        *,
        annotations_per_clip: int | None = None,
        migrate: bool = True,
        pool_max: int = POOL_MAX,
    ) -> None:
        self.url = url
        #: The pipeline of each connection inside a batched `_write` (for `_settle`).
        self._pipelines: dict[int, psycopg.Pipeline] = {}
        self._shared: _Shared | None = None
        self._granted = GrantedLeases()
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_max,
            configure=_configure,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "annotator"},
            open=False,
            # A connection the database dropped (a restart) is replaced on checkout.
            check=check_connection,
            # The pool's reconnection backs off exponentially (1, 2, 4, 8 s...): after a long
            # outage the database would be back long before the pool tried again. Give up on a
            # reconnection after this long instead; the next request starts a fresh one.
            reconnect_timeout=CHECKOUT_TIMEOUT_S,
            name="annotator",
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except (psycopg.Error, PoolTimeout) as e:
            self.pool.close()
            raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {e}") from None
        self.audio = PostgresAudioStore(self)
        try:
            if migrate:
                self.applied_migrations = self.migrate()
            elif self.schema_version() != SCHEMA_VERSION:
                raise DatabaseUnavailable(f"{redact(url)} needs `annotator db migrate`")
            if annotations_per_clip is not None:
                self.set_annotations_per_clip(annotations_per_clip)
        except BaseException:
            self.pool.close()
            raise

    def describe(self) -> str:
        return redact(self.url)

    def _sql(self, text: str) -> str:
        return pg_sql(text)

    # ------------------------------------------------------------------ plumbing

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            if exists is None or exists[0] is None:
                return 0
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def migrate(self) -> list[int]:
        applied: list[int] = []
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = on")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise DatabaseUnavailable(
                    f"{redact(self.url)} was made by a newer annotator (schema {version});"
                    " upgrade annotator"
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute(POSTGRES_MIGRATIONS[v - 1])
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (v,))
                applied.append(v)
        return applied

    @contextlib.contextmanager
    def shared_writes(self) -> Iterator[None]:
        """Every `_write`, `_read` and statement this thread makes until the block ends runs on
        ONE connection in ONE durable transaction (pipelined, as a batched `_write`): a write as
        a SAVEPOINT (a refusal rolls back that write's statements only), all committed together
        at the end, so the claims of one event-loop turn (`api.server.claim_group`) wait for
        one WAL flush between them instead of one each, while the loop waits. A person's claim
        lock held elsewhere is not waited for: the group fails (`_PersonBusy`) and is rolled
        back, so what a claim did without its lock does not stand. An exception out of the block
        rolls back every write in it."""
        with self._write(durable=True, batched=True) as conn:
            shared = self._shared = _Shared(threading.get_ident(), conn)
            try:
                yield
            finally:
                self._shared = None
            for lock in shared.locks:  # answered by now: read without a round trip
                taken = lock.fetchone()
                if taken is None or not taken[0]:
                    raise _PersonBusy("a claim's person lock is held elsewhere")

    def _in_shared(self) -> _Shared | None:
        shared = self._shared
        return shared if shared is not None and shared.thread == threading.get_ident() else None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; an unreachable database becomes a 503 the client retries.
        Inside `shared_writes`: its connection."""
        shared = self._in_shared()
        if shared is not None:
            yield shared.conn
            return
        try:
            with self.pool.connection(timeout=CHECKOUT_TIMEOUT_S) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as e:
            log.warning("database unavailable: %s", type(e).__name__)
            raise Rejection(
                503, "database_unavailable", "the queue database is unavailable; retry shortly"
            ) from None

    @contextlib.contextmanager
    def _write(
        self, *, durable: bool = False, batched: bool = False
    ) -> Iterator[psycopg.Connection[Any]]:
        shared = self._in_shared()
        if shared is not None:  # a savepoint of the shared (durable) transaction, queued
            conn = shared.conn
            conn.execute("SAVEPOINT write")
            try:
                yield conn
            except BaseException:
                # Queued too. After a failed statement the pipeline refuses them (the group
                # then fails as a whole, `shared_writes`).
                conn.execute("ROLLBACK TO SAVEPOINT write")
                conn.execute("RELEASE SAVEPOINT write")
                raise
            conn.execute("RELEASE SAVEPOINT write")
            return
        with self._connection() as conn:
            if not batched:
                # One round trip (no parameters: the simple protocol takes both statements).
                conn.execute("BEGIN" if durable else "BEGIN; SET LOCAL synchronous_commit = off")
                with self._rolled_back_on_error(conn):
                    yield conn
                conn.execute("COMMIT")
                return
            try:
                with conn.pipeline() as pipeline:
                    self._pipelines[id(conn)] = pipeline
                    try:
                        # Queued: they go out with the first statement that is waited for.
                        conn.execute("BEGIN")
                        if not durable:
                            conn.execute("SET LOCAL synchronous_commit = off")
                        with self._rolled_back_on_error(conn):
                            yield conn
                        # Sent, and waited for as the pipeline ends. Every check of the
                        # transaction was made before it (a rowcount is read only after
                        # `_settle`), or travels with it (`annotator_expect`).
                        conn.execute("COMMIT")
                    finally:
                        del self._pipelines[id(conn)]
            except psycopg.Error as e:
                # A statement sent with the COMMIT failed: the COMMIT was not run, and the
                # transaction is undone here before the connection goes back to the pool.
                if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                with _moved_refused():
                    raise e from None

    @staticmethod
    @contextlib.contextmanager
    def _rolled_back_on_error(conn: psycopg.Connection[Any]) -> Iterator[None]:
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg.Error):  # a dropped connection: nothing to undo
                conn.execute("ROLLBACK")
            raise

    def _settle(self, conn: Any) -> None:
        pipeline = self._pipelines.get(id(conn))
        if pipeline is not None:
            with _moved_refused():
                pipeline.sync()

    def submit_many(
        self, items: Sequence[tuple[str, Submission]], now: datetime, *, sync: bool = True
    ) -> list[SubmitResult | Rejection]:
        """A lone submit (group commit's usual group) is optimistic: one read without locks,
        the rules, then its writes as one autocommit statement guarded by the row versions it
        read — two statements, where the locking transaction takes five (BEGIN, the locking
        read, the replay read, the writes, COMMIT), the same two round trips. When a row moved
        meanwhile (a guard's AN409) or a concurrent submit got in first (a unique index: the
        same Idempotency-Key, or the same person on the same clip), it reads and decides again,
        and after `OPTIMISTIC_TRIES` it takes the locks. A group is one transaction
        (`_submit_group`). `sync` changes nothing: PostgreSQL flushes at COMMIT, on its side
        (`defers_sync` is False)."""
        t_now = ts(now)
        if len(items) != 1:
            return self._submit_group(items, now, t_now)
        annotator, submission = items[0]
        for _ in range(OPTIMISTIC_TRIES):
            try:
                return [self._submit_optimistic(annotator, submission, t_now)]
            except _Raced:
                continue
            except Rejection as r:
                if r.status_code >= 500:
                    raise
                return [r]
        return super().submit_many(items, now)

    def _submit_group(
        self, items: Sequence[tuple[str, Submission]], now: datetime, t_now: float
    ) -> list[SubmitResult | Rejection]:
        """Submits that arrived together, as one durable transaction in two round trips: every
        item's optimistic read at once, the rules for each, then every accepted item's guarded
        writes with the COMMIT (the locking path, one item after another in savepoints, costs
        two round trips an item). A group whose items could meet each other (the same
        Idempotency-Key or lease twice), or whose writes lost a race (a guard or a unique
        index), is done again the locking way: nothing of the first try was committed."""
        keys = {(annotator, s.idempotency_key) for annotator, s in items}
        leases = {s.lease_id for _, s in items}
        if len(keys) < len(items) or len(leases) < len(items):
            return super().submit_many(items, now)
        results: list[SubmitResult | Rejection] = []
        try:
            with self._write(durable=True, batched=True) as conn:
                # Granted here: no read (`GrantedLeases`); else the read, all sent at once.
                reads = [self._granted_row(annotator, s) or self._read_for(conn, annotator, s)
                         for annotator, s in items]  # fmt: skip
                for (annotator, s), read in zip(items, reads, strict=True):
                    try:
                        results.append(self._decide(conn, annotator, s, t_now, read))
                    except Rejection as r:
                        if r.status_code >= 500:
                            raise
                        results.append(r)
        except psycopg.IntegrityError:
            return super().submit_many(items, now)
        except Rejection as r:
            if r.reason != "stale_fence":
                raise
            return super().submit_many(items, now)  # a guard: a row moved meanwhile
        return results

    def renew(
        self,
        lease_id: str,
        annotator: str,
        ttl_s: int,
        now: datetime,
        *,
        max_lifetime_s: int | None = None,
    ) -> LeaseStatus:
        self._granted.take(lease_id)  # its rows move: its submit reads them
        return super().renew(lease_id, annotator, ttl_s, now, max_lifetime_s=max_lifetime_s)

    def release(
        self,
        lease_id: str,
        annotator: str,
        reason: ReleaseReason,
        detail: str | None,
        now: datetime,
    ) -> None:
        self._granted.take(lease_id)
        super().release(lease_id, annotator, reason, detail, now)

    def _granted_row(self, annotator: str, s: Submission) -> tuple[Any, ...] | None:
        """The submit's read as this process's claim of the lease left it (once), or None."""
        granted = self._granted.take(s.lease_id)
        if granted is None or granted[0][2] != annotator:
            return None
        row, version = granted
        return (None,) * _ANNOTATION_WIDTH + row + (version, version)

    @staticmethod
    def _read_for(conn: psycopg.Connection[Any], annotator: str, s: Submission) -> Any:
        return conn.execute(_OPTIMISTIC_READ, (annotator, annotator, s.idempotency_key, s.lease_id))

    def _submit_optimistic(self, annotator: str, s: Submission, t_now: float) -> SubmitResult:
        granted = self._granted_row(annotator, s)
        with self._connection() as conn:
            try:
                if granted is not None:
                    try:  # one round trip: the rules on the granted rows, the guarded writes
                        return self._decide(conn, annotator, s, t_now, granted)
                    except psycopg.Error as e:
                        if not _lost_race(e):
                            raise
                        # Moved, replayed or annotated since: read and decide.
                return self._decide(conn, annotator, s, t_now, self._read_for(conn, annotator, s))
            except psycopg.Error as e:
                if not _lost_race(e):
                    raise
                raise _Raced from None

    def _decide(
        self, conn: psycopg.Connection[Any], annotator: str, s: Submission, t_now: float, read: Any
    ) -> SubmitResult:
        """`_optimistic_write` on `read`: a granted row (`_granted_row`) or `_read_for`'s cursor.
        A refusal decided on granted rows is not given: a refusal comes only from a read (a
        replay comes before the rules), so that submit reads and is decided again."""
        if not isinstance(read, tuple):
            return self._optimistic_write(conn, annotator, s, t_now, read.fetchone())
        try:
            return self._optimistic_write(conn, annotator, s, t_now, read)
        except Rejection as r:
            if r.status_code >= 500:
                raise
        row = self._read_for(conn, annotator, s).fetchone()
        return self._optimistic_write(conn, annotator, s, t_now, row)

    @staticmethod
    def _optimistic_write(
        conn: psycopg.Connection[Any],
        annotator: str,
        s: Submission,
        t_now: float,
        row: Sequence[Any] | None,
    ) -> SubmitResult:
        """Decide on `row` (`_OPTIMISTIC_READ`'s layout) and send the accepted submit's guarded
        writes (not waited for in a pipeline: they go with its COMMIT)."""
        assert row is not None  # a LEFT JOIN from a constant: always one row
        earlier = row[:_ANNOTATION_WIDTH] if row[0] is not None else None
        lease = row[_ANNOTATION_WIDTH:-2] if row[_ANNOTATION_WIDTH] is not None else None
        decided = submit_decision(annotator, s, t_now, lease, earlier)
        if isinstance(decided, SubmitResult):
            return decided
        params = _submit_writes_params(
            decided.row_values,
            decided.lease,
            decided.holds_clip,
            decided.releases,
            (row[-2], row[-1]),
        )
        conn.execute(_submit_writes_sql(decided.holds_clip, decided.releases, True), params)
        return SubmitResult(annotation=decided.stored, replayed=False)

    def _submit_writes(
        self,
        conn: Any,
        row_values: tuple[Any, ...],
        lease: rules.LeaseRow,
        holds_clip: bool,
        releases: bool,
        alone: bool,
    ) -> None:
        params = _submit_writes_params(row_values, lease, holds_clip, releases, None)
        # Its check travels with it: alone, it goes out with the COMMIT; in a group, it is
        # waited for here, so a refusal undoes only its own item (the caller's savepoint).
        conn.execute(_submit_writes_sql(holds_clip, releases, False), params)
        if not alone:
            self._settle(conn)

    def _statement(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return self._connection()  # autocommit: one statement is its own transaction

    def _claim_transaction(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        if self._in_shared() is None:
            # A lone claim is one statement (`_claim_rows`), its own durable transaction in
            # autocommit: one round trip and no pipeline (whose handling in psycopg was half
            # of the claim's cost in this process; notes/pg9j.md).
            return self._statement()
        return self._write(durable=True, batched=True)  # a savepoint of the group's

    @contextlib.contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        with self._connection() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close()

    # ------------------------------------------------------------------ backend specifics

    def _claim_rows(
        self,
        conn: Any,
        annotator: str,
        count: int,
        t_now: float,
        expires: float,
        *,
        max_live: int | None,
        gate: ClaimGate | None,
        request_key: str | None = None,
        replay: bool = False,
    ) -> Iterator[tuple[str, int, tuple[Any, ...]]]:
        replay_key = request_key if replay else None
        if self._in_shared() is None and (max_live is not None or request_key is not None):
            head, head_params = _locked_claim_head(annotator, t_now, max_live, gate, replay_key)
        else:
            head, head_params = self.claim_head(annotator, t_now, max_live, gate, replay_key)
        ids = [new_id() for _ in range(count)]
        cap = count if max_live is None else max_live
        cursor = conn.execute(
            self._sql(_CLAIM_SQL.replace("{head}", head)),
            (
                *head_params,
                t_now,
                annotator,
                annotator,
                annotator,
                count,
                cap,
                ids,
                expires,
                annotator,
                t_now,
                expires,
                request_key,
            ),
        )

        def rows() -> Iterator[tuple[str, int, tuple[Any, ...]]]:
            # Read once the transaction has ended: the claim and its COMMIT in one round trip.
            # The statement leased only what `admit` allows; its refusals are raised here.
            found = cursor.fetchall()
            self.admit(found[0][0], found[0][1], found[0][2], count, max_live)
            for row in found:
                if row[3] is not None:  # the LEFT JOIN's row when nothing was leased
                    lease_id, fence, clip_id = row[3], int(row[4]), row[5]
                    granted = (lease_id, clip_id, annotator, fence, expires, False)
                    # The submit's read as the claim left the rows (`_granted`'s docstring).
                    self._granted.put(
                        lease_id,
                        (*granted, int(row[13]), int(row[14]), lease_id, expires, None),
                        row[15],
                    )
                    yield lease_id, fence, tuple(row[5:13])

        return rows()

    def _start_claim(self, conn: Any, annotator: str, *, serialise: bool) -> None:
        # A lone claim serialises in its own statement (`_locked_claim_head`). In a group the
        # person's lock is tried, not waited for (`shared_writes`): the answer goes with the
        # claim (one round trip) and is checked before the group commits. Two claims of one
        # person in parallel would both count under the cap.
        shared = self._in_shared()
        if serialise and shared is not None:
            taken = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (annotator,)
            )
            shared.locks.append(taken)

    def refresh_statistics(self) -> None:
        with self._connection() as conn:
            conn.execute("ANALYZE clips")

    def _known_sha256(self, digests: list[str]) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT sha256 FROM clips WHERE sha256 = ANY(%s)", (digests,)
            ).fetchall()
        return {row[0] for row in rows}

    def export(self) -> Iterator[ExportRow]:
        # A server-side cursor on a connection of its own: rows stream in chunks.
        with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="export") as cur,
        ):
            cur.itersize = EXPORT_CHUNK
            cur.execute(self.EXPORT_SQL)
            for row in cur:
                yield self.export_row(row)

    # ------------------------------------------------------------------ db copy

    def columns(self, table: str) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s"
                " ORDER BY ordinal_position",
                (table,),
            ).fetchall()
        return [r[0] for r in rows]

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        cols = ", ".join(self.columns(table))
        with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=f"copy_{table}") as cur,
        ):
            cur.itersize = EXPORT_CHUNK
            cur.execute(f"SELECT {cols} FROM {table}")  # noqa: S608
            yield from cur

    def after_copy(self) -> None:
        """Move the clip (and amendment) sequences past the copied rows, so new ones follow."""
        with self._write(durable=True) as conn:
            for table in ("clips", "amendments"):
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'),"  # noqa: S608
                    f" COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
                )
