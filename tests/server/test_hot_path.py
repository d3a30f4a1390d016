"""`api.server.hot_path` answers exactly as FastAPI's routes do: every request below is sent once
with the hot path in front of the router and once straight to FastAPI, on both backends, and the
answers must match — byte for byte for refusals, in status, headers and shape where the answer
holds new ids (a lease, a receipt). The well-formed cycle must be the hot path's (FastAPI not
called), the malformed requests FastAPI's (it falls through)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.models import Role
from api.server.app import create_app
from api.server.clock import FakeClock
from api.server.hot_path import HotPath
from api.server.settings import ServerSettings
from tests.fixtures.server import open_repo, write_wavs

JSON = {"content-type": "application/json"}


class Both:
    """One app; `send(..., hot=...)` with or without the hot path in front of its router."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token
        # The router's stack is the hot path, with every request counted in flight around it.
        self.stack = app.router.middleware_stack
        self.hot: HotPath = self.stack.app
        assert isinstance(self.hot, HotPath)
        self.fastapi_calls = 0
        inner = self.hot.app

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            self.fastapi_calls += 1
            await inner(scope, receive, send)

        self.hot.app = counted
        self.fastapi = counted

    def send(
        self,
        method: str,
        path: str,
        *,
        hot: bool,
        content: bytes = b"",
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        self.app.router.middleware_stack = self.stack if hot else self.fastapi
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if auth and not any(k == "authorization" for k, _ in pairs):
            pairs.insert(0, ("authorization", f"Bearer {self.token}"))
        sent = httpx.Headers(pairs)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://queue") as client:
                return await client.request(method, path, content=content, headers=sent)

        try:
            return asyncio.run(go())
        finally:
            self.app.router.middleware_stack = self.stack

    def lease(self, hot: bool) -> dict[str, Any]:
        r = self.send("POST", "/v1/leases", hot=hot, content=b'{"count": 1}', headers=JSON)
        assert r.status_code == 200, r.text
        lease: dict[str, Any] = r.json()["leases"][0]
        return lease


@pytest.fixture
def both(tmp_path: Path, new_db_url: Callable[[Path], str]) -> Iterator[Both]:
    url = new_db_url(tmp_path)
    settings = ServerSettings(
        db_url=url, db_path=tmp_path / "q.db", data_dir=tmp_path / "data", gold_rate=0
    )
    repo = open_repo(url, settings.data_dir)
    batcher = repo.batcher()
    from api.server.ingest import ingest_paths

    ingest_paths(
        write_wavs(tmp_path / "wavs", 16),
        locale="en-US",
        asr_hints={},
        add_clip=batcher.add_clip,
        progress=False,
    )
    batcher.flush()
    token = repo.create_token("ann", Role.ANNOTATOR)
    repo.create_token("bob", Role.ANNOTATOR)
    try:
        yield Both(create_app(settings, clock=FakeClock(), repo=repo), token)
    finally:
        repo.close()


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.headers.multi_items(), a.content) == (
        b.status_code,
        b.headers.multi_items(),
        b.content,
    )


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _alike(a: httpx.Response, b: httpx.Response) -> None:
    """Same status, header names and content type, and JSON of the same shape."""
    assert a.status_code == b.status_code
    assert [k for k, _ in a.headers.multi_items()] == [k for k, _ in b.headers.multi_items()]
    assert a.headers["content-type"] == b.headers["content-type"]
    assert _shape(a.json()) == _shape(b.json())


LEASE_REFUSALS: list[tuple[dict[str, str], bytes, bool]] = [
    (JSON, b'{"count": 1}', False),  # no token
    ({**JSON, "authorization": "Basic abc"}, b'{"count": 1}', True),
    ({**JSON, "authorization": "Bearer "}, b'{"count": 1}', True),
    ({**JSON, "authorization": "Bearer not-a-token"}, b'{"count": 1}', True),
    (JSON, b"not json", True),
    (JSON, b"\xff\xfe{", True),
    (JSON, b"", True),
    (JSON, b"[]", True),
    (JSON, b'{"count": 0}', True),
    (JSON, b'{"count": 1, "colour": "red"}', True),
    (JSON, b'{"count": 1, "count": 10000}', True),
    (JSON, b'{"count": 1, "ttl_seconds": 1}', True),
    ({"content-type": "text/plain"}, b'{"count": 1}', True),
    ({**JSON, "authorization": "Bearer not-a-token"}, b"not json", True),
]


def test_a_lease_request_it_refuses_is_refused_as_fastapi_does(both: Both) -> None:
    for headers, content, auth in LEASE_REFUSALS:
        answers = [
            both.send("POST", "/v1/leases", hot=hot, content=content, headers=headers, auth=auth)
            for hot in (False, True)
        ]
        assert answers[0].status_code >= 400, (content, answers[0].text)
        _same(*answers)


def test_the_cycle_is_the_hot_paths_and_answers_as_fastapi_does(both: Both) -> None:
    answers: dict[bool, list[httpx.Response]] = {}
    for hot in (False, True):
        before = both.fastapi_calls
        got: list[httpx.Response] = []
        for content in (b'{"count": 1}', b"{}", b'{"count": "1"}'):
            got.append(both.send("POST", "/v1/leases", hot=hot, content=content, headers=JSON))
        lease = got[0].json()["leases"][0]
        got.append(both.send("GET", f"/v1/leases/{lease['lease_id']}/audio", hot=hot))
        body = {
            "lease_id": lease["lease_id"],
            "fence": lease["fence"],
            "transcript": "what's the weather tomorrow",
            "intent": "weather_query",
            "flags": [],
        }
        key = {**JSON, "idempotency-key": uuid.uuid4().hex}
        content = json.dumps(body).encode()
        got.append(both.send("POST", "/v1/annotations", hot=hot, content=content, headers=key))
        got.append(both.send("POST", "/v1/annotations", hot=hot, content=content, headers=key))
        assert [r.status_code for r in got] == [200, 200, 200, 200, 201, 200]
        assert both.fastapi_calls == before + (0 if hot else len(got))
        answers[hot] = got
    for plain, fast in zip(answers[False], answers[True], strict=True):
        if plain.headers["content-type"] == "application/json":
            _alike(plain, fast)
        else:  # the audio: same bytes (the clips differ; their format and headers do not)
            assert plain.headers.multi_items()[:-1] == fast.headers.multi_items()[:-1]
            assert plain.status_code == fast.status_code and len(plain.content) > 0


def test_audio_and_submit_refusals_are_fastapis(both: Both) -> None:
    mine = both.lease(hot=True)
    theirs_token = both.token
    audio = f"/v1/leases/{mine['lease_id']}/audio"
    good = {
        "lease_id": mine["lease_id"],
        "fence": mine["fence"],
        "transcript": "play some jazz",
        "intent": "play_music",
        "flags": [],
    }

    def submit(body: dict[str, Any], **headers: str) -> list[Any]:
        return [("POST", "/v1/annotations", json.dumps(body).encode(), {**JSON, **headers})]

    key = uuid.uuid4().hex
    cases: list[Any] = [
        ("GET", "/v1/leases/unknownlease1/audio", b"", {}),
        ("GET", "/v1/leases/a.b/audio", b"", {}),
        ("GET", "/v1/leases/" + "a" * 65 + "/audio", b"", {}),
        ("GET", audio, b"", {"authorization": "Bearer nope-nope"}),
        *submit(good),  # no Idempotency-Key
        *submit(good, **{"idempotency-key": "short"}),
        *submit({**good, "fence": mine["fence"] + 3}, **{"idempotency-key": key}),
        *submit({**good, "intent": "no_such_intent"}, **{"idempotency-key": key}),
        *submit({**good, "transcript": "x" * 100_000}, **{"idempotency-key": key}),
        *submit({**good, "lease_id": "unknownlease1"}, **{"idempotency-key": key}),
        *submit({**good, "flags": "distress"}, **{"idempotency-key": key}),
        ("POST", "/v1/annotations", b"{", {**JSON, "idempotency-key": key}),
    ]
    for method, path, content, headers in cases:
        answers = [
            both.send(method, path, hot=hot, content=content, headers=headers)
            for hot in (False, True)
        ]
        assert answers[0].status_code >= 400, (path, answers[0].text)
        _same(*answers)
    # Another person's lease: refused the same way (and the lease is still there after).
    both.token = _other_token(both)
    try:
        _same(*(both.send("GET", audio, hot=hot) for hot in (False, True)))
    finally:
        both.token = theirs_token
    assert both.send("GET", audio, hot=True).status_code == 200
    # Two Idempotency-Key headers: FastAPI's to answer (it takes the first: the second send is
    # a replay of the first).
    twice = [("content-type", "application/json"), ("idempotency-key", key)]
    twice.append(("idempotency-key", uuid.uuid4().hex))
    before = both.fastapi_calls
    answers = [
        both.send(
            "POST", "/v1/annotations", hot=hot, content=json.dumps(good).encode(), headers=twice
        )
        for hot in (False, True)
    ]
    assert both.fastapi_calls == before + 2  # fell through
    assert [r.status_code for r in answers] == [201, 200]


def _other_token(both: Both) -> str:
    service = both.app.state.service
    token: str = service.repo.create_token("carol", Role.ANNOTATOR)
    return token


def test_oversize_and_streamed_bodies_are_answered_as_fastapi_does(both: Both) -> None:
    """The body-size limit stays the app's: a well-formed body over it is its 413 either way;
    a streamed (chunked) body within it is served either way."""
    limit = both.app.state.service.settings.max_body_bytes
    big = b'{"count": 1}' + b" " * limit  # well-formed: only its size is wrong
    answers = [
        both.send("POST", "/v1/leases", hot=hot, content=big, headers=JSON) for hot in (False, True)
    ]
    assert answers[0].status_code == 413, answers[0].text
    _same(*answers)

    async def chunks() -> Any:
        yield b'{"count"'
        yield b": 1}"

    async def streamed() -> httpx.Response:
        transport = httpx.ASGITransport(app=both.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://queue") as client:
            return await client.post(
                "/v1/leases",
                content=chunks(),
                headers={**JSON, "authorization": f"Bearer {both.token}"},
            )

    assert asyncio.run(streamed()).status_code == 200


def test_a_failure_inside_a_taken_request_is_the_catch_alls(
    both: Both, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error while answering: the same 500 ErrorBody either way, and the log names
    the route and the exception's type only (not its text)."""
    service = both.app.state.service

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret transcript text")

    monkeypatch.setattr(service, "claim", broken)
    with caplog.at_level("ERROR"):
        answers = [
            both.send("POST", "/v1/leases", hot=hot, content=b'{"count": 1}', headers=JSON)
            for hot in (False, True)
        ]
    assert answers[0].status_code == 500
    _same(*answers)
    logged = [r.getMessage() for r in caplog.records if "internal error" in r.getMessage()]
    assert logged == ["internal error on POST /v1/leases: RuntimeError"] * 2
    assert "secret" not in caplog.text
