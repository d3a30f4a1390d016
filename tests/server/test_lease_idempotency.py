"""Idempotent lease requests: POST /v1/leases with an `Idempotency-Key`.

A retry of a request whose answer was lost gets the same leases (still live, same fences), never
new ones that would sit leased to nobody until they expire; another key gets new leases; once
the key's leases have ended (submitted, released, expired) the key is spent. Real servers on
loopback, both backends; the lost answer itself is a fault the real server cannot produce, so an
httpx transport drops the first answer after the server handled it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from annotator.prefetch import Prefetcher
from annotator.store.cache import ClipCache
from annotator.store.db import LocalStore
from annotator.workbench.checkout import checkout
from api.client import Conflict, QueueClient, new_idempotency_key
from api.server.quality_rules import Expected
from api.server.quality_store import GoldAnswer, QualityStore
from tests.fixtures.server import ClockedServer, LiveServer
from tests.server.helpers import live_lease_ids


class DropsFirstLeaseAnswer(httpx.BaseTransport):
    """Sends every request to the real server; the first answer to POST /v1/leases is read
    (the server has granted the leases) and then lost, as a connection reset would lose it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost: list[dict[str, Any]] = []
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/leases":
            self.keys.append(request.headers.get("Idempotency-Key"))
            if not self.lost:
                response.read()
                self.lost.append(response.json())
                response.close()
                raise httpx.ReadError("connection reset after the server answered")
        return response

    def close(self) -> None:
        self.inner.close()


def post_lease(client: httpx.Client, key: str | None, count: int = 2) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/v1/leases", json={"count": count}, headers=headers)


def test_a_retry_gets_the_same_leases_and_another_key_new_ones(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    live_server.ingest(test_wavs(12))
    with live_server.client(live_server.annotator_token) as http:
        key = new_idempotency_key()
        first = post_lease(http, key)
        assert first.status_code == 200, first.text
        again = post_lease(http, key, count=5)  # a retry answers what the request got
        assert again.status_code == 200, again.text
        pick = [
            (le["lease_id"], le["fence"], le["clip"]["clip_id"]) for le in first.json()["leases"]
        ]
        assert len(pick) == 2
        assert sorted(pick) == sorted(
            (le["lease_id"], le["fence"], le["clip"]["clip_id"]) for le in again.json()["leases"]
        )
        other = post_lease(http, new_idempotency_key())
        assert {le["lease_id"] for le in other.json()["leases"]}.isdisjoint(p[0] for p in pick)
        unkeyed = post_lease(http, None)  # older clients: no key, a new claim every time
        assert len(unkeyed.json()["leases"]) == 2
        assert len(live_lease_ids(live_server, "ann1")) == 6  # 2 + 2 + 2: none granted twice

        # The key is spent once its leases have ended: a reuse is a new request.
        for lease_id, fence, _ in pick:
            body = {
                "lease_id": lease_id,
                "fence": fence,
                "transcript": "play some jazz",
                "intent": "play_music",
            }
            if lease_id == pick[0][0]:
                r = http.post("/v1/annotations", json=body, headers={"Idempotency-Key": key})
                assert r.status_code == 201, r.text
            else:
                r = http.post(f"/v1/leases/{lease_id}/release", json={"reason": "unused"})
                assert r.status_code == 204, r.text
        reused = post_lease(http, key)
        assert {le["lease_id"] for le in reused.json()["leases"]}.isdisjoint(p[0] for p in pick)
        assert len(reused.json()["leases"]) == 2

        # Part of a request ended: the retry answers with what still lives, as it is now.
        leases = post_lease(http, key := new_idempotency_key(), count=3).json()["leases"]
        gone = leases[1]["lease_id"]
        assert http.post(f"/v1/leases/{gone}/release", json={"reason": "unused"}).status_code == 204
        renewed = http.post(f"/v1/leases/{leases[0]['lease_id']}/renew", json={}).json()
        again_now = post_lease(http, key, count=3).json()["leases"]
        assert {le["lease_id"] for le in again_now} == {
            leases[0]["lease_id"],
            leases[2]["lease_id"],
        }
        by_id = {le["lease_id"]: le for le in again_now}
        assert by_id[leases[0]["lease_id"]]["expires_at"] == renewed["expires_at"]
        assert by_id[leases[2]["lease_id"]]["fence"] == leases[2]["fence"]

        # A key the contract does not allow is refused before anything is leased.
        held = live_lease_ids(live_server, "ann1")
        for bad in ("short", "x" * 129, "has space", "semi;colon-key"):
            r = http.post("/v1/leases", json={"count": 1}, headers={"Idempotency-Key": bad})
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["field"] or r.json()["reason"]
        assert live_lease_ids(live_server, "ann1") == held


def test_a_retry_at_the_lease_cap_is_answered_not_refused(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(max_live_leases=3, gold_rate=0)
    server.ingest(test_wavs(6))
    client = QueueClient(server.url, server.token("alice"))
    key = new_idempotency_key()
    got = client.lease(3, idempotency_key=key).leases
    # The person is at the cap now: their retry still gets its own leases...
    assert [le.lease_id for le in client.lease(3, idempotency_key=key).leases] == [
        le.lease_id for le in got
    ]
    with pytest.raises(Conflict) as e:  # ...a new request is refused
        client.lease(1, idempotency_key=new_idempotency_key())
    assert e.value.reason == "lease_cap"
    client.close()


def test_the_key_expires_with_its_leases(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(gold_rate=0)
    server.ingest(test_wavs(4))
    client = QueueClient(server.url, server.token("alice"))
    key = new_idempotency_key()
    first = {le.lease_id for le in client.lease(2, ttl_seconds=60, idempotency_key=key).leases}
    server.clock.advance(30)
    assert {le.lease_id for le in client.lease(2, idempotency_key=key).leases} == first
    server.clock.advance(31)  # expired: the key answers nothing any more; a new claim
    later = {le.lease_id for le in client.lease(2, idempotency_key=key).leases}
    assert len(later) == 2 and later.isdisjoint(first)
    client.close()


def test_gold_leases_come_back_with_the_retry(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    """With every slot gold and one gold clip, a claim of 3 is three transactions (the ordinary
    part, gold, ordinary clips for the slots gold could not fill); the key is on every lease they
    granted, and the retry names them all without dealing anything new."""
    server = make_clocked_server(gold_rate=1.0)
    clip_ids = server.ingest(test_wavs(6))
    QualityStore(server.repo).put_gold(
        [GoldAnswer(clip_ids[0], Expected("play some jazz", "play_music", frozenset()))],
        server.clock.now(),
    )
    client = QueueClient(server.url, server.token("alice"))
    key = new_idempotency_key()
    first = client.lease(3, idempotency_key=key).leases
    assert len(first) == 3 and clip_ids[0] in {le.clip.clip_id for le in first}
    again = client.lease(3, idempotency_key=key).leases
    assert {(le.lease_id, le.fence) for le in again} == {(le.lease_id, le.fence) for le in first}
    assert len(client.lease(3, idempotency_key=new_idempotency_key()).leases) == 3
    client.close()


def test_prefetch_and_checkout_retry_a_lost_answer_under_the_same_key(
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_server.ingest(test_wavs(10))
    url, token = live_server.url, live_server.annotator_token
    transport = DropsFirstLeaseAnswer()
    prefetcher = Prefetcher(lambda: QueueClient(url, token, transport=transport), depth=2)
    prefetcher.start()
    try:
        deadline = time.monotonic() + 20
        while prefetcher.status.ready < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert prefetcher.status.ready >= 2, prefetcher.status
        held = {c.lease_id for c in (prefetcher.take(), prefetcher.take()) if c is not None}
    finally:
        prefetcher.close(release_unused=False)
    lost = {le["lease_id"] for le in transport.lost[0]["leases"]}
    assert transport.keys[0] is not None and transport.keys[1] == transport.keys[0]
    assert lost <= held  # the retry brought back what the lost answer held...
    assert live_lease_ids(live_server, "ann1") == held  # ...and nothing else is leased

    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    transport = DropsFirstLeaseAnswer()
    store, cache = LocalStore.open(), ClipCache.open_default()
    try:
        result = checkout(lambda: QueueClient(url, token, transport=transport), cache, store, 3)
        recorded = {r.lease_id for r in store.lease_records()}
    finally:
        store.close()
    assert result.error is None and len(result.leases) == 3
    assert {le["lease_id"] for le in transport.lost[0]["leases"]} == recorded
    assert transport.keys[1] == transport.keys[0]
    assert live_lease_ids(live_server, "ann1") == held | recorded  # nothing stranded
