"""The floor for the server figures: a bare ASGI callable (no FastAPI, no pydantic, no service
layer) serving the same three requests of an annotator's cycle with the same durable writes.

- `POST /v1/leases` authenticates the bearer token (sha256, looked up once then cached, as the
  server's service does), claims the next open clip (fence + 1, lease row) in one write
  transaction, and answers the lease as JSON.
- `GET /v1/leases/{id}/audio` checks the lease is the caller's and reads the clip's file.
- `POST /v1/annotations` checks the fence in the write itself (`WHERE lease_id = ? AND fence = ?`),
  inserts the annotation under the idempotency key's unique index, completes the clip, and answers
  only after the commit is durable. Submits that arrive in the same event-loop turn share one
  transaction (group commit, as `api.server.group_commit` does): the floor must not be slower
  than the server for want of a design the server already uses.

SQLite runs with the server's settings (WAL, `synchronous=NORMAL`, `FULL` for the annotation
commit so the WAL is fsynced before the answer, `BEGIN IMMEDIATE` with a short retry loop).
PostgreSQL commits annotations and claims with `synchronous_commit = on` (the WAL flushed at
commit), as the server does: its claims are durable because a lease a crashed database forgot
turns the annotation later submitted under it into a 404 (`api.server.postgres_repo`), so the
floor makes the same promise; each request is one statement, claims take `FOR UPDATE SKIP
LOCKED`. Audio is read from local files on both (the least work: the server's PostgreSQL backend
may keep it elsewhere, which is its cost to carry).

It runs under uvicorn with the server's own configuration (`api.server.http_protocol`, no access
log, no server header, the listening socket's backlog, GC tuning): `python -m bench.floor_app
--db PATH|postgresql://… --audio DIR --port N --workers N`. Nothing here is the product.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ENV = "ANNOTATOR_BENCH_FLOOR"
LEASE_TTL_S = 600.0

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    seq INTEGER PRIMARY KEY, clip_id TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL, needed INTEGER NOT NULL DEFAULT 1,
    completed INTEGER NOT NULL DEFAULT 0, fence INTEGER NOT NULL DEFAULT 0,
    current_lease TEXT, leased_until REAL);
CREATE INDEX IF NOT EXISTS clips_open ON clips(seq) WHERE completed < needed;
CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY, clip_id TEXT NOT NULL, annotator TEXT NOT NULL,
    fence INTEGER NOT NULL, expires_at REAL NOT NULL, released INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS annotations (
    annotation_id TEXT PRIMARY KEY, clip_id TEXT NOT NULL, lease_id TEXT NOT NULL,
    annotator TEXT NOT NULL, idempotency_key TEXT NOT NULL, body TEXT NOT NULL,
    created_at REAL NOT NULL, UNIQUE (annotator, idempotency_key));
CREATE TABLE IF NOT EXISTS tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL);
"""

_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    seq BIGSERIAL PRIMARY KEY, clip_id TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL, needed INTEGER NOT NULL DEFAULT 1,
    completed INTEGER NOT NULL DEFAULT 0, fence INTEGER NOT NULL DEFAULT 0,
    current_lease TEXT, leased_until DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS clips_open ON clips(seq) WHERE completed < needed;
CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY, clip_id TEXT NOT NULL, annotator TEXT NOT NULL,
    fence INTEGER NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    released BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS annotations (
    annotation_id TEXT PRIMARY KEY, clip_id TEXT NOT NULL, lease_id TEXT NOT NULL,
    annotator TEXT NOT NULL, idempotency_key TEXT NOT NULL, body TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, UNIQUE (annotator, idempotency_key));
CREATE TABLE IF NOT EXISTS tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL);
"""

_CLAIM = (
    "UPDATE clips SET fence = fence + 1, current_lease = {p}, leased_until = {p}"
    " WHERE seq = (SELECT seq FROM clips WHERE completed < needed"
    " AND (leased_until IS NULL OR leased_until <= {p}) ORDER BY seq LIMIT 1{lock})"
    " RETURNING clip_id, fence, sha256"
)
_CLOSE_LEASE = (
    "UPDATE leases SET released = {true} WHERE lease_id = {p} AND annotator = {p}"
    " AND fence = {p} AND released = {false} AND expires_at > {p} RETURNING clip_id"
)
_INSERT_ANNOTATION = (
    "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator, idempotency_key,"
    " body, created_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
    " ON CONFLICT (annotator, idempotency_key) DO NOTHING"
)
_COMPLETE = (
    "UPDATE clips SET completed = completed + 1, current_lease = NULL, leased_until = NULL"
    " WHERE clip_id = {p}"
)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


#: One submit: (annotator, lease_id, fence, idempotency_key, body). Result: (status, clip_id).
Item = tuple[str, str, int, str, str]


class FloorStore(Protocol):
    def principal(self, token_sha256: str) -> str | None: ...
    def claim(self, annotator: str, now: float) -> tuple[str, str, int, str] | None: ...
    def audio_sha(self, lease_id: str, annotator: str) -> str | None: ...
    def submit_many(self, items: list[Item], now: float) -> list[tuple[int, str]]: ...


def _new_id() -> str:
    return secrets.token_urlsafe(12)


def token_sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SqliteFloor:
    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA busy_timeout = 0")  # our own short retry loop, as the server
        p = "?"
        self.claim_sql = _CLAIM.format(p=p, lock="")
        self.close_sql = _CLOSE_LEASE.format(p=p, true=1, false=0)
        self.insert_sql = _INSERT_ANNOTATION.format(p=p)
        self.complete_sql = _COMPLETE.format(p=p)

    def _begin(self) -> None:
        delay, deadline = 50e-6, time.monotonic() + 10
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2e-3)

    def principal(self, token_sha256: str) -> str | None:
        row = self.conn.execute(
            "SELECT name FROM tokens WHERE token_sha256 = ?", (token_sha256,)
        ).fetchone()
        return None if row is None else str(row[0])

    def claim(self, annotator: str, now: float) -> tuple[str, str, int, str] | None:
        lease_id = _new_id()
        self._begin()
        try:
            row = self.conn.execute(self.claim_sql, (lease_id, now + LEASE_TTL_S, now)).fetchone()
            if row is not None:
                self.conn.execute(
                    "INSERT INTO leases (lease_id, clip_id, annotator, fence, expires_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (lease_id, row[0], annotator, row[1], now + LEASE_TTL_S),
                )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return None if row is None else (lease_id, str(row[0]), int(row[1]), str(row[2]))

    def audio_sha(self, lease_id: str, annotator: str) -> str | None:
        row = self.conn.execute(
            "SELECT c.sha256 FROM leases l JOIN clips c ON c.clip_id = l.clip_id"
            " WHERE l.lease_id = ? AND l.annotator = ?",
            (lease_id, annotator),
        ).fetchone()
        return None if row is None else str(row[0])

    def submit_many(self, items: list[Item], now: float) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        self.conn.execute("PRAGMA synchronous = FULL")
        try:
            self._begin()
            try:
                for who, lease_id, fence, key, body in items:
                    self.conn.execute("SAVEPOINT item")
                    out.append(self._one(who, lease_id, fence, key, body, now))
                    self.conn.execute("RELEASE item")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        finally:
            self.conn.execute("PRAGMA synchronous = NORMAL")
        return out

    def _one(self, who: str, lease_id: str, fence: int, key: str, body: str, now: float) -> Any:
        done = self.conn.execute(self.close_sql, (lease_id, who, fence, now)).fetchone()
        if done is None:
            self.conn.execute("ROLLBACK TO item")
            return (409, "")
        clip_id = str(done[0])
        cur = self.conn.execute(
            self.insert_sql, (_new_id(), clip_id, lease_id, who, key, body, now)
        )
        if cur.rowcount != 1:
            self.conn.execute("ROLLBACK TO item")
            return (200, clip_id)  # a replay: the first one stands
        self.conn.execute(self.complete_sql, (clip_id,))
        return (201, clip_id)


_PG_CLAIM = """
WITH c AS (
    UPDATE clips SET fence = fence + 1, current_lease = %(lease)s, leased_until = %(until)s
     WHERE seq = (SELECT seq FROM clips WHERE completed < needed
                     AND (leased_until IS NULL OR leased_until <= %(now)s)
                   ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING clip_id, fence, sha256
), l AS (
    INSERT INTO leases (lease_id, clip_id, annotator, fence, expires_at)
    SELECT %(lease)s, clip_id, %(who)s, fence, %(until)s FROM c
)
SELECT clip_id, fence, sha256 FROM c
"""

# One statement per submit: the fence is checked in the write; a refused one writes nothing.
_PG_SUBMIT = """
WITH l AS (
    UPDATE leases SET released = true
     WHERE lease_id = %(lease)s AND annotator = %(who)s AND fence = %(fence)s
       AND NOT released AND expires_at > %(now)s
    RETURNING clip_id
), a AS (
    INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator, idempotency_key,
                             body, created_at)
    SELECT %(id)s, clip_id, %(lease)s, %(who)s, %(key)s, %(body)s, %(now)s FROM l
    ON CONFLICT (annotator, idempotency_key) DO NOTHING
    RETURNING clip_id
), c AS (
    UPDATE clips SET completed = completed + 1, current_lease = NULL, leased_until = NULL
     WHERE clip_id IN (SELECT clip_id FROM a)
    RETURNING clip_id
)
SELECT (SELECT clip_id FROM c)
"""


class PostgresFloor:
    """One connection per process, in autocommit with `synchronous_commit = on` (claims are durable,
    as the server's); each request is one statement (one round trip), and a group of submits is
    one transaction in one round trip. A replayed key answers 409 here, not 200: the bench never
    replays."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("SET synchronous_commit = on")

    def principal(self, token_sha256: str) -> str | None:
        row = self.conn.execute(
            "SELECT name FROM tokens WHERE token_sha256 = %s", (token_sha256,)
        ).fetchone()
        return None if row is None else str(row[0])

    def claim(self, annotator: str, now: float) -> tuple[str, str, int, str] | None:
        lease_id = _new_id()
        args = {"lease": lease_id, "until": now + LEASE_TTL_S, "now": now, "who": annotator}
        row = self.conn.execute(_PG_CLAIM, args).fetchone()
        return None if row is None else (lease_id, str(row[0]), int(row[1]), str(row[2]))

    def audio_sha(self, lease_id: str, annotator: str) -> str | None:
        row = self.conn.execute(
            "SELECT c.sha256 FROM leases l JOIN clips c ON c.clip_id = l.clip_id"
            " WHERE l.lease_id = %s AND l.annotator = %s",
            (lease_id, annotator),
        ).fetchone()
        return None if row is None else str(row[0])

    def submit_many(self, items: list[Item], now: float) -> list[tuple[int, str]]:
        # One round trip for the group, as the server batches its own (pipeline mode): BEGIN,
        # every submit and COMMIT go out together, and the answers come back after the commit.
        with self.conn.pipeline() as pipeline:
            self.conn.execute("BEGIN")
            cursors = []
            for who, lease_id, fence, key, body in items:
                args = {"lease": lease_id, "who": who, "fence": fence, "now": now}
                args.update(id=_new_id(), key=key, body=body)
                cursors.append(self.conn.execute(_PG_SUBMIT, args))
            self.conn.execute("COMMIT")
            pipeline.sync()
            rows = [cursor.fetchone() for cursor in cursors]
        return [(409, "") if not row or row[0] is None else (201, str(row[0])) for row in rows]


def open_floor(db: str) -> FloorStore:
    if db.startswith(("postgresql://", "postgres://")):
        return PostgresFloor(db)
    return SqliteFloor(Path(db))


def audio_path(audio_dir: Path, sha256: str) -> Path:
    return audio_dir / sha256[:2] / sha256


def prepare(db: str, audio_dir: Path, clips: Iterable[tuple[str, bytes]], tokens: int) -> list[str]:
    """Queue (sha256, audio) clips for the floor (files made durable with one syncfs, rows in one
    transaction) and make `tokens` annotator tokens."""
    rows: list[tuple[str, str, str]] = []
    for sha, audio in clips:
        path = audio_path(audio_dir, sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio)
        rows.append((_new_id(), sha, "audio/wav"))
    os.sync()
    names = [(secrets.token_urlsafe(32), f"floor{i}") for i in range(tokens)]
    if db.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(db) as conn:
            conn.execute(_PG_SCHEMA)
            with conn.cursor().copy("COPY clips (clip_id, sha256, media_type) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
            with conn.cursor().copy("COPY tokens (token_sha256, name) FROM STDIN") as cp:
                for token, name in names:
                    cp.write_row((token_sha(token), name))
            conn.execute("ANALYZE")
    else:
        lite = sqlite3.connect(db, isolation_level=None)
        try:
            lite.execute("PRAGMA journal_mode = WAL")
            lite.executescript(_SQLITE_SCHEMA)
            lite.execute("BEGIN")
            lite.executemany("INSERT INTO clips (clip_id, sha256, media_type) VALUES (?,?,?)", rows)
            lite.executemany(
                "INSERT INTO tokens VALUES (?, ?)", [(token_sha(t), n) for t, n in names]
            )
            lite.execute("COMMIT")
        finally:
            lite.close()
    return [t for t, _ in names]


# ------------------------------------------------------------------ the ASGI callable


class FloorApp:
    def __init__(self, store: FloorStore, audio_dir: Path) -> None:
        self.store = store
        self.audio_dir = audio_dir
        self.tokens: dict[str, str] = {}
        self.pending: list[tuple[Item, asyncio.Future[tuple[int, str]]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        try:
            status, body, ctype = await self._route(scope, receive)
        except Refused as r:
            status, body, ctype = r.status, json.dumps({"error": str(r)}).encode(), b"json"
        headers = [(b"content-type", b"application/" + ctype), (b"cache-control", b"no-store")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes, bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/v1/health":
            return 200, b'{"status":"ok"}', b"json"
        headers = dict(scope["headers"])
        who = self._who(headers.get(b"authorization", b""))
        if method == "POST" and path == "/v1/leases":
            await _body(receive)
            now = time.time()
            got = self.store.claim(who, now)
            leases = [] if got is None else [_lease_json(*got, now + LEASE_TTL_S)]
            return 200, json.dumps({"leases": leases}).encode(), b"json"
        if method == "GET" and path.startswith("/v1/leases/") and path.endswith("/audio"):
            sha = self.store.audio_sha(path[len("/v1/leases/") : -len("/audio")], who)
            if sha is None:
                raise Refused(404, "no such lease")
            return 200, audio_path(self.audio_dir, sha).read_bytes(), b"octet-stream"
        if method == "POST" and path == "/v1/annotations":
            raw = json.loads(await _body(receive))
            key = headers.get(b"idempotency-key", b"").decode()
            if not key or not isinstance(raw.get("transcript"), str):
                raise Refused(422, "missing fields")
            item = (who, str(raw["lease_id"]), int(raw["fence"]), key, json.dumps(raw))
            status, clip_id = await self._grouped(item)
            if status == 409:
                raise Refused(409, "stale fence or lease")
            receipt = {"annotation_id": _new_id(), "clip_id": clip_id, "status": "accepted"}
            return status, json.dumps(receipt).encode(), b"json"
        raise Refused(404, "no such route")

    def _who(self, auth: bytes) -> str:
        token = auth[7:].decode() if auth.startswith(b"Bearer ") else ""
        who = self.tokens.get(token)
        if who is None:
            who = self.store.principal(token_sha(token)) if token else None
            if who is None:
                raise Refused(401, "bad token")
            self.tokens[token] = who
        return who

    async def _grouped(self, item: Item) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, str]] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((item, future))
        return await future

    def _flush(self) -> None:
        group, self.pending = self.pending, []
        try:
            results = self.store.submit_many([item for item, _ in group], time.time())
        except Exception as e:
            for _, future in group:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)


def _lease_json(lease_id: str, clip_id: str, fence: int, sha: str, until: float) -> Any:
    return {
        "lease_id": lease_id,
        "fence": fence,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)),
        "clip": {
            "clip_id": clip_id,
            "duration_s": 0.25,
            "sample_rate": 16000,
            "channels": 1,
            "locale": "en-US",
            "sha256": sha,
            "asr_hint": None,
        },
    }


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def app_from_env() -> FloorApp:
    """uvicorn's factory for --workers N: each process opens its own connection."""
    db, audio = json.loads(os.environ[ENV])
    app = FloorApp(open_floor(db), Path(audio))
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)  # as api.server.app.tune_gc_for_serving
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.server.http_protocol import CoalescingHttpToolsProtocol

    parser = argparse.ArgumentParser(prog="python -m bench.floor_app")
    parser.add_argument("--db", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[ENV] = json.dumps([args.db, args.audio])
    # The options `annotator serve` gives uvicorn (api/server/commands.py).
    common: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": args.port,
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 5,
        "server_header": False,
        "http": CoalescingHttpToolsProtocol,
    }
    sock = socket.create_server(("127.0.0.1", args.port), backlog=2048)
    sock.set_inheritable(True)
    print(f"serving on http://127.0.0.1:{args.port}", flush=True)
    if args.workers == 1:
        uvicorn.Server(uvicorn.Config(app_from_env(), **common)).run(sockets=[sock])
        return 0
    config = uvicorn.Config(
        "bench.floor_app:app_from_env", factory=True, workers=args.workers, **common
    )
    Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
