"""The sync engine against the real server (`annotator serve` subprocess over loopback)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from annotator.store import ClipCache, LocalStore, OutboxKind, OutboxState, load_cache_key
from annotator.sync import Backoff, SyncEngine, SyncEvent
from api.client import InsecureServerError, QueueClient
from tests.fixtures.server import ClockedServer, LiveServer
from tests.store.sync_support import (
    LostResponses,
    Recording,
    annotation_for,
    assert_exactly_once,
    client_factory,
    export,
    lease_many,
    submit_all,
    wait_until,
)

FAST = Backoff(initial=0.05, cap=0.3, jitter=0.05)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStore]:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    s = LocalStore.open()
    yield s
    s.close()


@pytest.fixture
def server(live_server: LiveServer, test_wavs: Callable[..., list[Path]]) -> LiveServer:
    live_server.ingest(test_wavs(40))
    return live_server


def test_thirty_queued_annotations_arrive_exactly_once(
    server: LiveServer, store: LocalStore
) -> None:
    leases = lease_many(server.url, server.annotator_token, 30)
    submit_all(store, leases)
    events: list[SyncEvent] = []
    engine = SyncEngine(
        store, client_factory(server.url, server.annotator_token), on_event=events.append
    )
    engine.start()
    engine.wake()
    wait_until(lambda: store.outbox_count() == 0)
    engine.stop()
    records = export(server.url, server.admin_token)
    assert len(records) == 30
    assert_exactly_once(records, [le.clip.clip_id for le in leases])
    assert sum(e.sent for e in events) == 30 and events[-1].pending == 0
    history = store.history(100)
    assert {h.state for h in history} == {OutboxState.SENT}
    assert {h.annotation_id for h in history} == {r["annotation_id"] for r in records}
    # A second flush has nothing to send and sends nothing.
    assert engine.flush(5).requests == 0


def test_few_items_go_singly_many_by_batch(server: LiveServer, store: LocalStore) -> None:
    transport = Recording()
    engine = SyncEngine(store, client_factory(server.url, server.annotator_token, transport))
    leases = lease_many(server.url, server.annotator_token, 7)
    submit_all(store, leases[:2])
    assert engine.flush(10).accepted == 2
    assert transport.seen == ["POST /v1/annotations"] * 2
    transport.seen.clear()
    submit_all(store, leases[2:])
    assert engine.flush(10).accepted == 5
    assert transport.seen == ["POST /v1/annotations/batch"]


def test_server_down_then_up_everything_arrives(server: LiveServer, store: LocalStore) -> None:
    leases = lease_many(server.url, server.annotator_token, 12)
    events: list[SyncEvent] = []
    engine = SyncEngine(
        store,
        client_factory(server.url, server.annotator_token),
        on_event=events.append,
        backoff=Backoff(initial=0.2, cap=0.5, jitter=0.1),
    )
    server.stop()
    submit_all(store, leases)
    summary = engine.flush(10)
    assert summary.sent == 0 and summary.pending == 12 and summary.error
    assert not engine.online
    (first, *_) = store.outbox()
    assert first.attempts == 1 and first.next_attempt_at > datetime.now(UTC).timestamp()
    assert "OfflineError" in (first.last_error or "")
    engine.start()
    wait_until(lambda: any(e.went_offline for e in events) or not engine.online, 5)
    attempts_before = store.outbox()[0].attempts
    wait_until(lambda: store.outbox()[0].attempts > attempts_before + 1, 15)  # it keeps trying
    server.start()
    wait_until(lambda: store.outbox_count() == 0, 30)
    wait_until(lambda: engine.online, 15)
    engine.stop()
    assert any(e.came_online for e in events)
    assert_exactly_once(export(server.url, server.admin_token), [le.clip.clip_id for le in leases])


@pytest.mark.parametrize("count", [1, 6])
def test_lost_response_retry_creates_nothing_new(
    server: LiveServer, store: LocalStore, count: int
) -> None:
    leases = lease_many(server.url, server.annotator_token, count)
    submit_all(store, leases)
    transport = LostResponses(lose=1)
    engine = SyncEngine(store, client_factory(server.url, server.annotator_token, transport))
    lost = engine.flush(10)
    assert lost.sent == 0 and lost.pending == count and lost.error
    # The server did store them: the export already holds every one.
    stored = export(server.url, server.admin_token)
    assert len(stored) == count
    again = engine.flush(10)
    assert again.sent == count and again.pending == 0
    after = export(server.url, server.admin_token)
    assert len(after) == count
    assert_exactly_once(after, [le.clip.clip_id for le in leases])
    assert {h.annotation_id for h in store.history()} == {r["annotation_id"] for r in stored}


def test_rejected_items_are_kept_and_the_rest_arrive(server: LiveServer, store: LocalStore) -> None:
    leases = lease_many(server.url, server.annotator_token, 4)
    for le in leases[:3]:
        store.submit(annotation_for(le), clip_id=le.clip.clip_id)
    bad = annotation_for(leases[3]).model_copy(update={"intent": "not_an_intent"})
    store.submit(bad, clip_id=leases[3].clip.clip_id)
    engine = SyncEngine(store, client_factory(server.url, server.annotator_token))
    summary = engine.flush(10)
    assert (summary.accepted, summary.rejected, summary.pending) == (3, 1, 0)
    (rejected,) = store.rejected()
    assert rejected.status_code == 422 and rejected.clip_id == leases[3].clip.clip_id
    assert store.unsynced_count() == 1
    assert len(export(server.url, server.admin_token)) == 3


def test_amend_after_send_reaches_the_server(server: LiveServer, store: LocalStore) -> None:
    (lease,) = lease_many(server.url, server.annotator_token, 1)
    (key,) = submit_all(store, [lease])
    engine = SyncEngine(store, client_factory(server.url, server.annotator_token))
    assert engine.flush(10).accepted == 1
    amend_key = store.amend(key, annotation_for(lease, "set an alarm for eight"))
    assert amend_key != key
    summary = engine.flush(10)
    assert summary.amended == 1 and store.outbox_count() == 0
    (record,) = export(server.url, server.admin_token)
    assert record["transcript"] == "set an alarm for eight" and record["amended_at"]


def test_acknowledged_audio_leaves_the_cache(server: LiveServer, store: LocalStore) -> None:
    leases = lease_many(server.url, server.annotator_token, 3)
    key, _ = load_cache_key()
    cache = ClipCache(store.path.parent / "cache", key)
    for le in leases:
        cache.put(le.clip.clip_id, b"audio")
    acked: list[str] = []
    submit_all(store, leases[:2])
    engine = SyncEngine(
        store,
        client_factory(server.url, server.annotator_token),
        cache=cache,
        on_acknowledged=acked.append,
    )
    engine.flush(10)
    assert sorted(acked) == sorted(le.clip.clip_id for le in leases[:2])
    assert cache.entries() == [leases[2].clip.clip_id]


def test_conflict_after_expiry_is_kept_and_late_work_counted(
    clocked_server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    store: LocalStore,
    tmp_path: Path,
) -> None:
    srv = clocked_server
    srv.ingest(test_wavs(2))
    me, other = srv.token("ann1"), srv.token("ann2")
    mine = lease_many(srv.url, me, 2, ttl=30)
    srv.clock.advance(31)  # both of my leases expire
    # Someone else leases the first clip again and completes it.
    (theirs,) = lease_many(srv.url, other, 1, ttl=60)
    assert theirs.clip.clip_id == mine[0].clip.clip_id
    with client_factory(srv.url, other)() as c:
        c.submit(annotation_for(theirs), "their-key-0001")
    submit_all(store, mine)
    engine = SyncEngine(store, client_factory(srv.url, me))
    summary = engine.flush(10)
    assert (summary.conflicts, summary.late, summary.accepted) == (1, 1, 0)
    (conflict,) = store.conflicts()
    assert conflict.reason == "completed_by_other" and conflict.clip_id == mine[0].clip.clip_id
    out = tmp_path / "c.jsonl"
    assert store.export_conflicts_jsonl(out) == 1
    assert mine[0].clip.clip_id in out.read_text()
    states = {h.clip_id: h.state for h in store.history()}
    assert states[mine[0].clip.clip_id] is OutboxState.CONFLICT
    assert states[mine[1].clip.clip_id] is OutboxState.SENT


def test_amendment_whose_window_closed_is_rejected_visibly(
    clocked_server: ClockedServer, test_wavs: Callable[..., list[Path]], store: LocalStore
) -> None:
    srv = clocked_server
    srv.ingest(test_wavs(1))
    me = srv.token("ann1")
    (lease,) = lease_many(srv.url, me, 1)
    (key,) = submit_all(store, [lease])
    engine = SyncEngine(store, client_factory(srv.url, me))
    engine.flush(10)
    # Queued while the window was open (by the local clock), sent after it closed on the server.
    store.amend(key, annotation_for(lease, "too late"), now=datetime.now(UTC) - timedelta(hours=1))
    srv.clock.advance(3600)
    summary = engine.flush(10)
    assert summary.rejected == 1
    (r,) = store.rejected()
    assert r.kind is OutboxKind.AMEND
    assert "amendment refused" in (store.history()[0].error or "")


def test_a_client_that_cannot_be_built_never_rejects_work(
    server: LiveServer, store: LocalStore
) -> None:
    leases = lease_many(server.url, server.annotator_token, 3)
    submit_all(store, leases)

    def broken() -> QueueClient:
        raise InsecureServerError("refusing plain http:// to example.org")

    engine = SyncEngine(store, broken, backoff=FAST)
    summary = engine.flush(5)
    assert summary.sent == 0 and summary.rejected == 0 and summary.pending == 3
    assert "cannot create the client" in (summary.error or "")
    assert store.rejected() == [] and not engine.online


def test_wake_sends_at_once(server: LiveServer, store: LocalStore) -> None:
    (lease,) = lease_many(server.url, server.annotator_token, 1)
    engine = SyncEngine(store, client_factory(server.url, server.annotator_token))
    engine.start()
    try:
        time.sleep(0.2)  # the engine is idle, waiting for work
        store.submit(annotation_for(lease), clip_id=lease.clip.clip_id)
        started = time.monotonic()
        engine.wake()
        wait_until(lambda: store.outbox_count() == 0, 10, step=0.005)
        # Well before the 30 s idle poll (and generous for a loaded CI machine).
        assert time.monotonic() - started < 3.0
    finally:
        engine.stop()


def test_forced_wake_ignores_backoff_once(server: LiveServer, store: LocalStore) -> None:
    """The TUI saw the server answer again (say, prefetch succeeded): `wake(force=True)` sends
    at once what sat out backoff, where a plain wake waits for the due time."""
    leases = lease_many(server.url, server.annotator_token, 3)
    engine = SyncEngine(
        store,
        client_factory(server.url, server.annotator_token),
        backoff=Backoff(initial=120.0, cap=120.0, jitter=0.0),
    )
    server.stop()
    submit_all(store, leases)
    assert engine.flush(5).error is not None and not engine.online
    assert min(i.next_attempt_at for i in store.outbox()) > time.time() + 100  # two minutes off
    retry_at, attempts = engine._retry_at, [i.attempts for i in store.outbox()]
    engine.start()
    try:
        # A wrong tip (the server is still down): one probe, and the schedule is left alone.
        engine.wake(force=True)
        time.sleep(0.5)
        assert engine._retry_at == retry_at and [i.attempts for i in store.outbox()] == attempts
        server.start()
        engine.wake()
        time.sleep(0.5)
        assert store.outbox_count() == 3 and not engine.online  # the schedule was respected
        started = time.monotonic()
        engine.wake(force=True)
        wait_until(lambda: store.outbox_count() == 0, 10, step=0.005)
        assert time.monotonic() - started < 3.0
        wait_until(lambda: engine.online, 1)
        # Once: the next plain pass follows the schedule again (nothing is due, nothing is sent).
        assert not engine._force_next.is_set()
    finally:
        engine.stop()
    assert_exactly_once(export(server.url, server.admin_token), [le.clip.clip_id for le in leases])


class _ProxyErrorsFirst(httpx.BaseTransport):
    """A reverse proxy that answers 503 (and then 429) before letting requests through."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.faults = [503, 429]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.faults and request.url.path.startswith("/v1/annotations"):
            return httpx.Response(self.faults.pop(0), text="upstream busy")
        return self.inner.handle_request(request)


def test_proxy_errors_are_retried_not_rejected(server: LiveServer, store: LocalStore) -> None:
    leases = lease_many(server.url, server.annotator_token, 5)
    submit_all(store, leases)
    engine = SyncEngine(
        store, client_factory(server.url, server.annotator_token, _ProxyErrorsFirst()), backoff=FAST
    )
    assert engine.flush(5).error is not None  # 503
    assert engine.flush(5).error is not None  # 429
    summary = engine.flush(5)
    assert summary.accepted == 5 and summary.pending == 0 and store.rejected() == []
    assert_exactly_once(export(server.url, server.admin_token), [le.clip.clip_id for le in leases])
