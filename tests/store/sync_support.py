"""Helpers shared by the sync tests (tests/test_sync*.py) and the crash driver."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from annotator.store import LocalStore
from api.client import QueueClient
from api.models import AnnotationIn, Lease


def client_factory(
    url: str, token: str, transport: httpx.BaseTransport | None = None
) -> Callable[[], QueueClient]:
    def make() -> QueueClient:
        return QueueClient(url, token, timeout=5.0, transport=transport)

    return make


def lease_many(url: str, token: str, n: int, ttl: int | None = None) -> list[Lease]:
    got: list[Lease] = []
    with QueueClient(url, token) as c:
        while len(got) < n:
            page = c.lease(min(50, n - len(got)), ttl).leases
            assert page, f"the queue ran dry after {len(got)} of {n} leases"
            got.extend(page)
    return got


def annotation_for(lease: Lease, text: str | None = None) -> AnnotationIn:
    return AnnotationIn(
        lease_id=lease.lease_id,
        fence=lease.fence,
        transcript=text if text is not None else f"set an alarm for {lease.clip.clip_id}",
        intent="alarm_set",
        flags=[],
    )


def submit_all(store: LocalStore, leases: list[Lease]) -> list[str]:
    keys = []
    for le in leases:
        store.remember_lease(le)
        keys.append(store.submit(annotation_for(le), clip_id=le.clip.clip_id).key)
    return keys


def export(url: str, admin_token: str) -> list[dict[str, Any]]:
    with QueueClient(url, admin_token) as c:
        return [json.loads(line) for line in c.export_jsonl()]


def assert_exactly_once(records: list[dict[str, Any]], clip_ids: list[str]) -> None:
    per_clip = Counter(r["clip_id"] for r in records)
    twice = {c: n for c, n in per_clip.items() if n > 1}
    assert not twice, f"annotations stored more than once: {twice}"
    missing = set(clip_ids) - set(per_clip)
    assert not missing, f"{len(missing)} submitted annotations never arrived"


def wait_until(cond: Callable[[], bool], timeout: float = 15.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)


class LostResponses(httpx.BaseTransport):
    """Forwards to the real server, then loses the answer of the first `lose` submissions:
    the server stored the annotation, the client sees a dropped connection."""

    def __init__(self, lose: int, paths: tuple[str, ...] = ("/v1/annotations",)) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.paths = paths
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.seen.append(f"{request.method} {request.url.path}")
        if self.lose > 0 and request.url.path.startswith(self.paths):
            response.read()
            response.close()
            self.lose -= 1
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class Recording(httpx.BaseTransport):
    """Forwards everything and remembers which endpoints were used."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
