"""Who may do what (401/403/404), and bad input answered with 4xx naming the field."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.server import LiveServer, start_live_server, write_wavs
from tests.server.helpers import body, key


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the many refusal cases: a refused request changes nothing."""
    root = tmp_path_factory.mktemp("refusals")
    server = start_live_server(root)
    server.ingest(write_wavs(root / "wavs", 1))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_lease(shared_server: LiveServer) -> dict:
    with shared_server.client(shared_server.annotator_token) as http:
        return http.post("/v1/leases", json={"ttl_seconds": 3600}).json()["leases"][0]


def test_missing_or_bad_token_is_401(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as anon:
        missing = anon.post("/v1/leases", json={"count": 1})
        bad = anon.post(
            "/v1/leases", json={"count": 1}, headers={"Authorization": "Bearer nope-not-a-token"}
        )
        basic = anon.get("/v1/me/stats", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    for r in (missing, bad, basic):
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/json"
    assert missing.json()["reason"] == "missing_token"
    assert bad.json()["reason"] == "bad_token"
    assert missing.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/v1/escalations", {"supervisor", "admin"}), ("/v1/export", {"admin"})],
)
def test_role_matrix(live_server: LiveServer, path: str, allowed: set[str]) -> None:
    tokens = {
        "annotator": live_server.annotator_token,
        "supervisor": live_server.supervisor_token,
        "admin": live_server.admin_token,
    }
    for role, token in tokens.items():
        with live_server.client(token) as http:
            r = http.get(path)
        if role in allowed:
            assert r.status_code == 200, (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)
            assert r.json()["reason"] == "forbidden_role"


def test_someone_else_s_lease_answers_404_like_an_unknown_one(
    live_server: LiveServer, test_wavs
) -> None:
    live_server.ingest(test_wavs(1))
    other = live_server.new_token("ann2")
    with live_server.client(live_server.annotator_token) as mine:
        lease = mine.post("/v1/leases", json={}).json()["leases"][0]
    lid = lease["lease_id"]
    with live_server.client(other) as theirs:
        # Someone else's lease answers exactly as an id never issued: no existence oracle.
        unknown = theirs.get("/v1/leases/AAAAAAAAAAAAAAAA/audio")
        assert unknown.status_code == 404 and unknown.json()["reason"] == "lease_not_found"
        audio = theirs.get(f"/v1/leases/{lid}/audio")
        assert (audio.status_code, audio.json()) == (404, unknown.json())
        assert theirs.post(f"/v1/leases/{lid}/renew", json={}).status_code == 404
        assert (
            theirs.post(f"/v1/leases/{lid}/release", json={"reason": "skipped"}).status_code == 404
        )
        submit = theirs.post(
            "/v1/annotations", json=body(lease), headers={"Idempotency-Key": key()}
        )
        assert submit.status_code == 404 and submit.json()["reason"] == "lease_not_found"
        assert theirs.patch("/v1/annotations/AAAAAAAAAAAAAAAA", json={}).status_code == 404


def _submit(server: LiveServer, payload: bytes | dict, **headers: str) -> httpx.Response:
    with server.client(server.annotator_token) as http:
        if isinstance(payload, dict):
            return http.post(
                "/v1/annotations", json=payload, headers={"Idempotency-Key": key(), **headers}
            )
        return http.post(
            "/v1/annotations",
            content=payload,
            headers={"Idempotency-Key": key(), "Content-Type": "application/json", **headers},
        )


@pytest.fixture
def lease(live_server: LiveServer, test_wavs) -> dict:
    live_server.ingest(test_wavs(1))
    with live_server.client(live_server.annotator_token) as http:
        return http.post("/v1/leases", json={}).json()["leases"][0]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"fence": "three"}, "fence", "validation"),
        ({"fence": 0}, "fence", "validation"),
        ({"intent": "order_pizza"}, "intent", "unknown_intent"),
        ({"intent": "Not An Id"}, "intent", "bad_format"),
        ({"flags": ["pii", "glitter"]}, "flags", "unknown_flag"),
        ({"flags": "pii"}, "flags", "validation"),
        ({"transcript": "x" * 5001}, "transcript", "too_long"),
        ({"transcript": "hello [nois]"}, "transcript", "unknown_tag"),
        ({"transcript": ""}, "transcript", "transcript_required"),
        ({"timings": {"active_seconds": -1}}, "timings.active_seconds", "validation"),
        ({"customer_id": "123"}, "customer_id", "unknown_field"),
        ({"flags": ["self_harm"]}, "note", "note_required"),
    ],
)
def test_bad_annotation_is_422_naming_the_field(
    shared_server: LiveServer, shared_lease: dict, change: dict, field: str, reason: str
) -> None:
    r = _submit(shared_server, body(shared_lease, **change))
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["field"] == field
    assert error["reason"] == reason
    assert field.split(".")[-1] in error["message"] or error["reason"] in (
        "unknown_intent",
        "unknown_flag",
        "unknown_tag",
        "transcript_required",
        "note_required",
    )


def test_malformed_json_and_wrong_shapes(shared_server: LiveServer, shared_lease: dict) -> None:
    broken = _submit(shared_server, b'{"lease_id": ')
    assert broken.status_code == 422
    assert broken.json() == {
        "reason": "malformed_json",
        "message": broken.json()["message"],
        "field": "body",
    }
    array = _submit(shared_server, b"[1, 2]")
    assert array.status_code == 422 and array.json()["field"] == "body"
    no_key = _submit(shared_server, body(shared_lease), **{"Idempotency-Key": ""})
    assert no_key.status_code == 422 and no_key.json()["field"] == "Idempotency-Key"


def test_oversize_body_is_413(shared_server: LiveServer, shared_lease: dict) -> None:
    huge = _submit(shared_server, body(shared_lease, note="n" * (1024 * 1024 + 10)))
    assert huge.status_code == 413
    assert huge.json()["reason"] == "body_too_large" and huge.json()["field"] == "body"


def test_oversize_chunked_body_is_413(shared_server: LiveServer) -> None:
    def chunks():
        yield b'{"lease_id": "x", "note": "'
        for _ in range(20):
            yield b"n" * 65536
        yield b'"}'

    with shared_server.client(shared_server.annotator_token) as http:
        r = http.post(
            "/v1/annotations",
            content=chunks(),
            headers={"Idempotency-Key": key(), "Content-Type": "application/json"},
        )
    assert r.status_code == 413
    assert r.json()["reason"] == "body_too_large"


def test_lease_request_bounds(shared_server: LiveServer) -> None:
    with shared_server.client(shared_server.annotator_token) as http:
        too_many = http.post("/v1/leases", json={"count": 51})
        too_short = http.post("/v1/leases", json={"ttl_seconds": 5})
        bad_path = http.get("/v1/leases/has space/audio")
        unknown_route = http.get("/v1/nothing-here")
    assert too_many.status_code == 422 and too_many.json()["field"] == "count"
    assert too_short.status_code == 422 and too_short.json()["field"] == "ttl_seconds"
    assert bad_path.status_code == 422 and bad_path.json()["field"] == "lease_id"
    assert unknown_route.status_code == 404 and unknown_route.json()["reason"] == "not_found"


def test_logs_hold_no_tokens_or_transcripts(live_server: LiveServer, lease: dict) -> None:
    secret_words = "my pin is four four two nine"
    _submit(live_server, body(lease, transcript=secret_words))
    _submit(live_server, b"{broken")
    live_server.stop()
    log = live_server.log_path.read_text()
    assert secret_words not in log
    assert live_server.annotator_token not in log
