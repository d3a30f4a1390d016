"""Fuzzing `api.client.QueueClient`'s response handling with responses no real server sends.

A hostile or broken server (or a proxy in between) can answer anything: random JSON, the right
shape with wrong types, missing fields, huge numbers, non-JSON, odd status codes, a body cut off
mid-stream, an absurd Content-Length on audio. Served through `httpx.MockTransport`, every call
must either return a valid value of its declared type or raise an `api.client.ApiError` subclass
— never a KeyError, ValidationError, JSONDecodeError, ValueError or an httpx exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.client import ApiError, ProtocolError, QueueClient
from api.models import (
    Annotation,
    AnnotationIn,
    AnnotationPatch,
    BatchItem,
    BatchResponse,
    EscalationDetail,
    EscalationPage,
    Health,
    LeaseList,
    LeaseState,
    PeopleList,
    QueueStatus,
    Receipt,
    ReleaseReason,
    RevokeResult,
    Stats,
    Taxonomy,
    Throughput,
)

T = "2030-01-02T03:04:05Z"
CLIP: dict[str, Any] = {
    "clip_id": "c1",
    "duration_s": 1.5,
    "sample_rate": 16000,
    "channels": 1,
    "locale": "en-US",
    "sha256": "a" * 64,
    "asr_hint": None,
}
RECEIPT: dict[str, Any] = {
    "annotation_id": "a1",
    "clip_id": "c1",
    "status": "accepted",
    "amend_until": T,
}
ANNOTATION: dict[str, Any] = {
    "annotation_id": "a1",
    "clip_id": "c1",
    "transcript": "hi",
    "intent": "general_greet",
    "flags": [],
    "note": None,
    "status": "accepted",
    "created_at": T,
    "amended_at": None,
    "amend_until": T,
}

ESCALATION: dict[str, Any] = {
    "escalation_id": "a_a1",
    "kind": "flag",
    "clip_id": "c1",
    "annotation_id": "a1",
    "flags": ["distress"],
    "severity": 1,
    "note": "n",
    "transcript": "t",
    "intent": "no_speech",
    "annotator": "x",
    "created_at": T,
    "locale": "en-US",
    "duration_s": 1.5,
    "state": "acknowledged",
    "acknowledged_by": "s",
    "acknowledged_at": T,
    "sla": {"ack_due_at": T, "resolve_due_at": T, "ack_overdue": False, "resolve_overdue": True},
    "overdue": True,
}
DETAIL: dict[str, Any] = {
    "escalation": ESCALATION,
    "annotation": ANNOTATION,
    "amendments": [
        {"amended_at": T, "transcript": "t0", "intent": "no_speech", "flags": [], "note": None}
    ],
    "audit": [
        {
            "event_id": "e1",
            "escalation_id": "a_a1",
            "action": "ack",
            "actor": "s",
            "at": T,
            "from_state": "open",
            "to_state": "acknowledged",
        }
    ],
}

#: What a well-behaved server would answer for each method (the seed the mutations start from).
VALID: dict[str, Any] = {
    "health": {"status": "ok", "version": "1.0", "time": T},
    "taxonomy": {
        "version": "1",
        "intents": [{"id": "alarm_set", "scenario": "alarm", "description": ""}],
        "flags": [{"id": "pii", "definition": "names", "escalation": False}],
        "tags": [{"tag": "[noise]", "definition": "noise"}],
    },
    "lease": {"leases": [{"lease_id": "l1", "fence": 1, "expires_at": T, "clip": CLIP}]},
    "renew": {"lease_id": "l1", "fence": 1, "expires_at": T, "released": False},
    "release": None,
    "audio": None,
    "submit": RECEIPT,
    "submit_batch": {
        "results": [
            {"idempotency_key": "k" * 8, "status_code": 201, "receipt": RECEIPT, "error": None},
            {
                "idempotency_key": "j" * 8,
                "status_code": 422,
                "receipt": None,
                "error": {"reason": "validation", "message": "intent", "field": "intent"},
            },
        ]
    },
    "amend": ANNOTATION,
    "my_stats": {"today": 3, "clips_per_hour": 40.0, "median_seconds": 9.5, "total": 10},
    "escalations": {
        "escalations": [ESCALATION],
        "cursor": "ab12",
        "truncated": False,
        "now": T,
        "service_levels": {"ack_seconds": 900, "resolve_seconds": 86400},
    },
    "escalation": DETAIL,
    "acknowledge": DETAIL,
    "resolve": DETAIL,
    "reopen": DETAIL,
    "escalation_audio": None,
    "queue_status": {
        "at": T,
        "pending": 1,
        "leased": 2,
        "done": 3,
        "escalated": 1,
        "open_escalations": 1,
        "by_locale": [{"locale": "en-US", "pending": 1, "leased": 2, "done": 3, "escalated": 1}],
        "leases_per_person": [{"annotator": "x", "live_leases": 2}],
    },
    "people": {
        "people": [
            {
                "name": "x",
                "roles": ["annotator"],
                "live_tokens": 1,
                "tokens": [{"name": "x", "role": "annotator", "created_at": T, "revoked_at": None}],
                "annotations": 3,
                "last_annotation_at": T,
                "live_leases": 0,
            }
        ]
    },
    "revoke": {
        "revoked": 1,
        "person": {
            "name": "x",
            "person_id": "p1",
            "roles": ["annotator"],
            "live_tokens": 0,
            "tokens": [
                {
                    "name": "x",
                    "role": "annotator",
                    "created_at": T,
                    "revoked_at": T,
                    "token_id": "t1",
                    "state": "revoked",
                }
            ],
            "annotations": 0,
            "live_leases": 0,
        },
    },
    "throughput": {
        "since": T,
        "hours": [T],
        "people": [{"annotator": "x", "clips_per_hour": [3], "total": 3}],
    },
    "export_jsonl": None,
}

_ANNOTATION_IN = AnnotationIn(lease_id="l1", fence=1, transcript="hi", intent="general_greet")

#: method → (call it, the type a successful call returns)
CALLS: dict[str, tuple[Callable[[QueueClient], Any], type | tuple[type, ...]]] = {
    "health": (lambda c: c.health(), Health),
    "taxonomy": (lambda c: c.taxonomy(), Taxonomy),
    "lease": (lambda c: c.lease(2, 60), LeaseList),
    "renew": (lambda c: c.renew("l1", 60), LeaseState),
    "release": (lambda c: c.release("l1", ReleaseReason.SKIPPED), type(None)),
    "audio": (lambda c: c.audio("l1"), bytes),
    "submit": (lambda c: c.submit(_ANNOTATION_IN, "k" * 16), Receipt),
    "submit_batch": (
        lambda c: c.submit_batch([BatchItem(idempotency_key="k" * 8, annotation=_ANNOTATION_IN)]),
        BatchResponse,
    ),
    "amend": (lambda c: c.amend("a1", AnnotationPatch(transcript="x")), Annotation),
    "my_stats": (lambda c: c.my_stats(), Stats),
    "escalations": (lambda c: c.escalations(), EscalationPage),
    "escalation": (lambda c: c.escalation("a_a1"), EscalationDetail),
    "acknowledge": (lambda c: c.acknowledge("a_a1"), EscalationDetail),
    "resolve": (lambda c: c.resolve("a_a1", "false_alarm", "n"), EscalationDetail),
    "reopen": (lambda c: c.reopen("a_a1"), EscalationDetail),
    "escalation_audio": (lambda c: c.escalation_audio("a_a1"), bytes),
    "queue_status": (lambda c: c.queue_status(), QueueStatus),
    "people": (lambda c: c.people(), PeopleList),
    "revoke": (lambda c: c.revoke("p1", "t1"), RevokeResult),
    "throughput": (lambda c: c.throughput(), Throughput),
    "export_jsonl": (lambda c: list(c.export_jsonl()), list),
}

# ---------------------------------------------------------------- strategies

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["", "accepted", "late", T, "not-a-date", "a" * 64, "[noise]"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=15,
)
HUGE = st.sampled_from([10**400, -(10**400), 1e308, -1, 0, 2**63, 2**64 + 1, "1e999"])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _mutate(data: st.DataObject, seed: Any) -> Any:
    """One structural change somewhere in a valid answer: drop, retype, blow up, or add a key."""
    doc = json.loads(json.dumps(seed))
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    kind = data.draw(st.sampled_from(["drop", "replace", "huge", "extra", "wrap"]))
    if not path:
        return data.draw(JSON_VALUES) if kind != "extra" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "drop":
        del parent[last]
    elif kind == "replace":
        parent[last] = data.draw(JSON_VALUES)
    elif kind == "huge":
        parent[last] = data.draw(HUGE)
    elif kind == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10))] = data.draw(JSON_VALUES)
    return doc


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def _body(data: st.DataObject, method: str) -> bytes:
    seed = VALID[method]
    choices = ["random_json", "binary", "empty", "nested", "text"]
    if seed is not None:
        choices += ["mutated", "mutated", "mutated", "truncated", "valid"]
    kind = data.draw(st.sampled_from(choices), label="body kind")
    if kind == "random_json":
        return _encode(data.draw(JSON_VALUES))
    if kind == "binary":
        return data.draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "nested":
        depth = data.draw(st.integers(min_value=50, max_value=20_000))
        return b"[" * depth + b"]" * data.draw(st.sampled_from([0, depth]))
    if kind == "text":
        return data.draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "valid":
        return _encode(seed)
    if kind == "truncated":
        raw = _encode(seed)
        return raw[: data.draw(st.integers(min_value=0, max_value=len(raw) - 1))]
    return _encode(_mutate(data, seed))


STATUSES = st.one_of(
    st.sampled_from([200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 409, 410, 413]),
    st.sampled_from([422, 429, 500, 502, 503, 504]),
    st.integers(min_value=100, max_value=599),
)
ERROR_BODIES = st.one_of(
    st.fixed_dictionaries(
        {"reason": st.text(max_size=20), "message": st.text(max_size=40)},
        optional={"field": st.one_of(st.none(), st.text(max_size=10), st.integers())},
    ).map(_encode),
    JSON_VALUES.map(_encode),
)


class _CutStream(httpx.SyncByteStream):
    """A body that stops partway with the error httpx raises when a peer hangs up."""

    def __init__(self, head: bytes, error: Exception) -> None:
        self.head = head
        self.error = error

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            yield self.head
        raise self.error


def _response(data: st.DataObject, method: str) -> Callable[[httpx.Request], httpx.Response]:
    status = data.draw(STATUSES, label="status")
    body = data.draw(ERROR_BODIES) if status >= 400 and data.draw(st.booleans()) else None
    if body is None:
        body = _body(data, method) if method not in ("audio", "export_jsonl") else b""
        if method in ("audio", "export_jsonl"):
            body = data.draw(st.binary(max_size=300))
    headers: dict[str, str] = {}
    ctype = data.draw(
        st.sampled_from(
            [None, "application/json", "text/html", "audio/wav", "application/x-ndjson", "x/y"]
        )
    )
    if ctype:
        headers["Content-Type"] = ctype
    length = data.draw(
        st.sampled_from([None, None, "abc", "-1", "", "1e3", " 12", str(10**12), str(2**70)]),
        label="content-length",
    )
    if length is not None:
        headers["Content-Length"] = length
    failure = data.draw(
        st.sampled_from(["none", "none", "cut_read", "cut_protocol", "connect", "timeout"]),
        label="failure",
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "connect":
            raise httpx.ConnectError("refused", request=request)
        if failure == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if failure in ("cut_read", "cut_protocol"):
            error: Exception = (
                httpx.ReadError("reset")
                if failure == "cut_read"
                else httpx.RemoteProtocolError("peer closed connection")
            )
            return httpx.Response(
                status, headers=headers, stream=_CutStream(body[: len(body) // 2], error)
            )
        return httpx.Response(status, headers=headers, content=body)

    return handler


# ---------------------------------------------------------------- the property


def _check(method: str, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    call, expected = CALLS[method]
    client = QueueClient("http://127.0.0.1:9", "tok", transport=httpx.MockTransport(handler))
    try:
        result = call(client)
    except ApiError as exc:
        assert str(exc), f"{type(exc).__name__} with an empty message"
        return
    except Exception as exc:
        raise AssertionError(
            f"{method}() leaked {type(exc).__module__}.{type(exc).__name__}: {exc!r}"[:500]
        ) from exc
    finally:
        client.close()
    assert isinstance(result, expected), f"{method}() returned {type(result).__name__}"


@pytest.mark.parametrize("method", sorted(CALLS))
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_client_raises_only_api_errors(method: str, data: st.DataObject) -> None:
    _check(method, _response(data, method))


# ---------------------------------------------------------------- named cases (regressions)


def _fixed(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers=headers or {}, content=body)


@pytest.mark.parametrize("length", ["abc", "", "1e3", "-1", " 12", "0x10"])
def test_audio_with_a_malformed_content_length(length: str) -> None:
    """A Content-Length that is not a number must be ProtocolError (or ignored), not ValueError."""
    _check("audio", _fixed(200, b"RIFF....", {"Content-Length": length}))


def test_audio_with_a_huge_declared_length_is_refused_before_reading() -> None:
    read: list[bool] = []

    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            read.append(True)
            yield b"x"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10**12)}, stream=Body())

    client = QueueClient("http://127.0.0.1:9", "tok", transport=httpx.MockTransport(handler))
    with pytest.raises(ProtocolError):
        client.audio("l1")
    assert not read, "the client started reading a body it had already judged too large"


def test_deeply_nested_json_is_a_protocol_error() -> None:
    _check("lease", _fixed(200, b"[" * 100_000 + b"]" * 100_000))


def test_a_bare_string_where_an_object_belongs() -> None:
    _check("my_stats", _fixed(200, b'"ok"'))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422, 500, 503])
def test_errors_with_non_json_bodies(status: int) -> None:
    _check("lease", _fixed(status, b"<html>\xff\xfe bad gateway</html>"))


def test_infinite_duration_is_not_a_valid_clip() -> None:
    """`1e999` parses as float('inf'): a clip that lasts forever is not the contract."""
    lease = json.loads(_encode(VALID["lease"]))
    lease["leases"][0]["clip"]["duration_s"] = 1
    raw = _encode(lease).replace(b'"duration_s": 1', b'"duration_s": 1e999')
    client = QueueClient(
        "http://127.0.0.1:9", "tok", transport=httpx.MockTransport(_fixed(200, raw))
    )
    with pytest.raises(ProtocolError):
        client.lease()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"today": 1, "clips_per_hour": 1e999, "median_seconds": 2}',
        b'{"today": 1, "clips_per_hour": 2, "median_seconds": NaN}',
        b'{"today": 1, "clips_per_hour": 2, "median_seconds": Infinity}',
    ],
)
def test_non_finite_stats_are_a_protocol_error(raw: bytes) -> None:
    client = QueueClient(
        "http://127.0.0.1:9", "tok", transport=httpx.MockTransport(_fixed(200, raw))
    )
    with pytest.raises(ProtocolError):
        client.my_stats()
