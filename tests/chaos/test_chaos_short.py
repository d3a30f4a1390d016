"""The chaos run, short, inside `make test`; and the proxy's faults, each proven on its own.

`test_chaos_short` is the same harness as `python -m tests.chaos.run` (~30 s, 3 clients, a handful
of SIGKILLs, one server restart, every fault kind), with the same audit — then the audit is shown
to have teeth: one annotation deleted and one foreign duplicate inserted on the server must come
back as lost = 1 and duplicated ≥ 1.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from annotator.store import LocalStore
from api.client import ApiError, QueueClient
from tests.chaos.client_driver import ANNOTATING, NetworkGuard, store_lock
from tests.chaos.proxy import ChaosProxy, FaultKind
from tests.chaos.run import ChaosConfig, ChaosRun
from tests.fixtures.server import LiveServer, open_repo

# ---------------------------------------------------------------- the proxy, one fault at a time


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True
    #: Requests that reached the server whole, by path.
    seen: Counter[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn speaks it

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) == length:  # a request cut short is not a request
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        assert isinstance(self.server, _Upstream)
        self.server.seen[self.path] += 1
        payload = json.dumps({"path": self.path, "echo": body.decode(), "pad": "x" * 4000}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream(("127.0.0.1", 0), _Handler)
    server.seen = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[ChaosProxy]:
    p = ChaosProxy(int(upstream.server_address[1]), seed=7)
    p.start()
    yield p
    p.close()


@pytest.fixture
def http(proxy: ChaosProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=5.0) as c:
        yield c


def test_forwards_keepalive_requests_untouched(http: httpx.Client, upstream: _Upstream) -> None:
    for i in range(5):
        r = http.post("/v1/annotations", content=f"body {i}".encode())
        assert r.status_code == 200 and r.json()["echo"] == f"body {i}"
    assert upstream.seen["/v1/annotations"] == 5


def test_error_burst_is_answered_by_the_proxy(
    http: httpx.Client, proxy: ChaosProxy, upstream: _Upstream
) -> None:
    proxy.arm(FaultKind.ERROR_5XX, 2)
    codes = [http.get("/v1/health").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert upstream.seen["/v1/health"] == 1  # the two 503s never reached the server
    assert proxy.counts()[FaultKind.ERROR_5XX] == 2


def test_reset_response_loses_an_answer_the_server_gave(
    http: httpx.Client, proxy: ChaosProxy, upstream: _Upstream
) -> None:
    proxy.arm(FaultKind.RESET_RESPONSE, 1, path_prefix="/v1/annotations")
    assert http.get("/v1/health").status_code == 200  # another path: untouched
    with pytest.raises(httpx.TransportError):
        http.post("/v1/annotations", content=b"stored, then lost")
    assert upstream.seen["/v1/annotations"] == 1  # the server did the work
    assert http.post("/v1/annotations", content=b"again").status_code == 200
    assert proxy.counts()[FaultKind.RESET_RESPONSE] == 1


def test_truncated_response_is_a_short_read(
    http: httpx.Client, proxy: ChaosProxy, upstream: _Upstream
) -> None:
    proxy.arm(FaultKind.TRUNCATE, 1)
    with pytest.raises(httpx.TransportError):
        http.post("/v1/annotations", content=b"x")
    assert upstream.seen["/v1/annotations"] == 1
    assert proxy.counts()[FaultKind.TRUNCATE] == 1


def test_reset_request_never_delivers_a_whole_request(
    http: httpx.Client, proxy: ChaosProxy, upstream: _Upstream
) -> None:
    proxy.arm(FaultKind.RESET_REQUEST, 1)
    with pytest.raises(httpx.TransportError):
        http.post("/v1/annotations", content=b"y" * 2000)
    time.sleep(0.1)
    assert upstream.seen["/v1/annotations"] == 0
    assert proxy.counts()[FaultKind.RESET_REQUEST] == 1


def test_latency_and_bandwidth_slow_each_chunk(http: httpx.Client, proxy: ChaosProxy) -> None:
    proxy.set_latency(0.2)
    start = time.monotonic()
    http.get("/v1/health")
    assert time.monotonic() - start >= 0.4  # request and response chunks both waited
    proxy.set_latency(0.0)
    proxy.set_bandwidth(8_000)
    start = time.monotonic()
    http.get("/v1/health")  # ~4.1 kB of answer at 8 kB/s
    assert time.monotonic() - start >= 0.4
    proxy.clear()
    start = time.monotonic()
    http.get("/v1/health")
    assert time.monotonic() - start < 0.2


def test_server_down_closes_connections(upstream: _Upstream) -> None:
    p = ChaosProxy(int(upstream.server_address[1]))
    p.start()
    try:
        upstream.shutdown()
        upstream.server_close()
        with httpx.Client(base_url=p.url, timeout=5.0) as c, pytest.raises(httpx.TransportError):
            c.get("/v1/health")
        assert p.counts()["upstream_down"] == 1
    finally:
        p.close()


# ---------------------------------------------------------------- the driver's network guard


def test_network_guard_reports_requests_that_a_keypress_could_wait_on(
    upstream: _Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore.open(tmp_path / "local.db")
    lock = store_lock(store)
    url = f"http://127.0.0.1:{upstream.server_address[1]}"
    client = QueueClient(url, "t", transport=NetworkGuard(lock))

    def request() -> None:
        # The echo server's answer is not a Health: the client's ProtocolError is expected and
        # beside the point; whether the guard spoke is the point.
        with suppress(ApiError):
            client.health()

    def on_sync_thread(hold_lock: bool) -> None:
        def call() -> None:
            if hold_lock:
                with lock:
                    request()
            else:
                request()

        t = threading.Thread(target=call, name="annotator-sync")
        t.start()
        t.join()

    try:
        on_sync_thread(hold_lock=False)
        request()  # the main thread, but not while annotating (the quit path may send)
        assert "NETGUARD" not in capsys.readouterr().out
        on_sync_thread(hold_lock=True)
        assert "NETGUARD under_store_lock annotator-sync /v1/health" in capsys.readouterr().out
        ANNOTATING.set()
        request()
        assert "NETGUARD ui_thread MainThread /v1/health" in capsys.readouterr().out
    finally:
        ANNOTATING.clear()
        client.close()
        store.close()


# ---------------------------------------------------------------- found by the chaos audit


def test_an_older_annotator_leaves_a_newer_store_alone(tmp_path: Path) -> None:
    """Found for real: the audit, holding an older schema module while the tree moved to schema
    2, opened three clients' stores and moved them aside. Any older binary on the same home (a
    rollback, a second install on a shared host) would strand the outbox the same way: once moved,
    the newer annotator starts fresh too and never sends it."""
    from annotator.store import StoreError
    from annotator.store.schema import SCHEMA_VERSION

    path = tmp_path / "local.db"
    LocalStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError):
        LocalStore.open(path).close()
    assert path.exists(), "a newer annotator's store was moved aside"
    assert not list(tmp_path.glob("local.db.broken-*"))


# ---------------------------------------------------------------- the whole run, short


def _tamper(server: LiveServer) -> None:
    """Lose one stored annotation and store a clip twice, behind everyone's back."""
    repo = open_repo(server.db, server.data_dir)
    try:
        with repo._write() as conn:
            (victim,) = repo._one(
                conn, "SELECT annotation_id FROM annotations ORDER BY created_at LIMIT 1"
            )
            repo._x(conn, "DELETE FROM annotations WHERE annotation_id = ?", (victim,))
            repo._x(
                conn,
                "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator,"
                " idempotency_key, request_hash, body, transcript, intent, flags, note,"
                " active_seconds, status, escalated, taxonomy_version, created_at)"
                " SELECT 'intruder' || annotation_id, clip_id, lease_id, 'intruder',"
                " idempotency_key, request_hash, body, transcript, intent, flags, note,"
                " active_seconds, status, escalated, taxonomy_version, created_at"
                " FROM annotations ORDER BY created_at DESC LIMIT 1",
            )
    finally:
        repo.close()


# The two whole runs share one xdist worker (`--dist loadgroup`): side by side they would starve
# each other's clients on 2 cores.
@pytest.mark.xdist_group("chaos_runs")
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_chaos_short(tmp_path: Path) -> None:
    config = ChaosConfig(
        seconds=30,
        clients=3,
        seed=20261125,
        kill_every=(2.5, 5.0),
        fault_every=(0.3, 1.2),
        server_restarts=1,
        distress=0.15,
        lease_ttl=30,  # the server's minimum: renewals happen (at 15 s) inside the run
    )
    run = ChaosRun(config, tmp_path)
    try:
        run.start()
        run.chaos()
        run.wind_down()
        report = run.audit()
        print(report.render())
        assert report.ok, report.render()
        assert report.lost == 0 and report.duplicated == 0
        # No keypress could wait on the network (no request on the UI thread or under the store
        # lock). Its wall time is not asserted: beside the other suites on 2 cores an fsync
        # sometimes stalls past 50 ms, which is the disk; the report shows those.
        assert report.network_waits == 0
        # Enough keypresses for that to mean something. A bound on the work done, not on speed:
        # alone the run types 556-565; beside another xdist worker on 2 cores each of the ~10
        # client restarts takes longer and it typed 493 once (session 7), so 500 failed CI.
        assert report.keypresses >= 400
        assert report.submitted >= 30 and report.on_server >= report.submitted - report.conflicts
        assert report.escalations >= 1 and report.amendments >= 1
        assert report.kills >= 3 and report.server_restarts >= 1
        missing = [k for k in FaultKind if report.faults.get(str(k), 0) == 0]
        assert not missing, f"fault kinds that never fired: {missing}"

        # The audit has teeth: the same run, tampered with, must fail it.
        _tamper(run.server)
        tampered = run.audit()
        assert tampered.lost == 1, tampered.render()
        assert tampered.duplicated >= 1, tampered.render()
        assert not tampered.ok
    finally:
        run.close()


@pytest.mark.xdist_group("chaos_runs")
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_chaos_short_with_the_database_restarted(tmp_path: Path) -> None:
    """The same harness on PostgreSQL, shorter: the database restarts twice mid-run (a fast
    shutdown, then a crash-like immediate one) and the queue server once; nothing is lost or
    duplicated, and the audit still has teeth."""
    config = ChaosConfig(
        seconds=20,
        clients=2,
        seed=20261201,
        kill_every=(3.0, 6.0),
        fault_every=(0.5, 2.0),
        server_restarts=1,
        postgres=True,
        db_restarts=2,
        lease_ttl=30,
    )
    run = ChaosRun(config, tmp_path)
    try:
        run.start()
        run.chaos()
        run.wind_down()
        report = run.audit()
        print(report.render())
        assert report.ok, report.render()
        assert report.lost == 0 and report.duplicated == 0
        assert report.db_restarts == 2 and report.server_restarts >= 1
        # Work went on across the outages (~0.3 submissions per client-second here under load).
        assert report.submitted >= 8 and report.on_server >= report.submitted - report.conflicts
        _tamper(run.server)
        tampered = run.audit()
        assert tampered.lost == 1 and tampered.duplicated >= 1, tampered.render()
    finally:
        run.close()
