"""Finding 7 (issue 10): hostile input never reaches storage, a log or a terminal.

Against a real `annotator serve`: every integer of the contract is bounded (a 30-digit number is a
422 naming the field, never a 500); control, bidi and zero-width characters are refused in every
text field a person fills (transcript, note, release detail, token names) with the field named;
a crash logs the route and the exception's type only; `annotator ingest` and `token create` draw
hostile file names and names escaped.
"""

from __future__ import annotations

import inspect
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import api.models
from api.text_safety import escaping_console, for_terminal
from tests.fixtures.server import LiveServer, annotator_command
from tests.server.helpers import body, key

HUGE = 10**30
#: What an attacker types: a terminal retitle + clear, a Trojan-Source override, a zero-width
#: space, a newline, an 8-bit CSI, a BOM.
HOSTILE = {
    "osc_and_clear": "ok \x1b]0;pwned\x07\x1b[2J",
    "rtl_override": "evil \u202e gnp.exe",
    "zero_width": "wake\u200bme",
    "newline": "line one\nline two",
    "c1_csi": "x \x9b31m red",
    "bom": "\ufeffhello",
}


@pytest.fixture(scope="module")
def server(module_server: LiveServer) -> LiveServer:
    return module_server


@pytest.fixture(scope="module")
def lease(server: LiveServer) -> dict[str, Any]:
    with server.client(server.annotator_token) as http:
        leases: list[dict[str, Any]] = http.post(
            "/v1/leases", json={"count": 1, "ttl_seconds": 3600}
        ).json()["leases"]
    return leases[0]


def _submit(server: LiveServer, payload: dict[str, Any]) -> Any:
    with server.client(server.annotator_token) as http:
        return http.post("/v1/annotations", json=payload, headers={"Idempotency-Key": key()})


# ---------------------------------------------------------------- integers


def _models() -> list[type[BaseModel]]:
    return [
        m
        for _, m in inspect.getmembers(api.models, inspect.isclass)
        if issubclass(m, BaseModel) and m.__module__ == "api.models"
    ]


def _unbounded_ints(schema: dict[str, Any], where: str) -> typing.Iterator[str]:
    if schema.get("type") == "integer" and "maximum" not in schema:
        yield where
    for key_, sub in schema.items():
        if isinstance(sub, dict):
            yield from _unbounded_ints(sub, f"{where}.{key_}")
        elif isinstance(sub, list):
            for i, item in enumerate(sub):
                if isinstance(item, dict):
                    yield from _unbounded_ints(item, f"{where}.{key_}[{i}]")


def test_every_integer_in_the_contract_has_an_upper_bound() -> None:
    unbounded = [
        where
        for model in _models()
        for where in _unbounded_ints(model.model_json_schema(), model.__name__)
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [
        ("POST", "/v1/leases", {"count": HUGE}, "count"),
        ("POST", "/v1/leases", {"ttl_seconds": HUGE}, "ttl_seconds"),
        ("POST", "/v1/leases", {"count": -HUGE}, "count"),
        ("GET", f"/v1/escalations?limit={HUGE}", None, "limit"),
        ("GET", f"/v1/escalations?wait={HUGE}", None, "wait"),
        ("GET", f"/v1/admin/throughput?hours={HUGE}", None, "hours"),
        ("GET", "/v1/admin/throughput?since=99999-01-01T00:00:00Z", None, "since"),
        ("GET", "/v1/admin/throughput?since=9999-12-31T23:00:00Z&hours=168", None, "since"),
    ],
)
def test_a_thirty_digit_number_is_a_422_naming_the_field(
    server: LiveServer, method: str, path: str, payload: Any, field: str
) -> None:
    with server.client(server.admin_token) as http:
        r = http.request(method, path, json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fence": HUGE}, "fence"),
        ({"fence": 2**63}, "fence"),
        ({"timings": {"plays": HUGE}}, "timings.plays"),
        ({"timings": {"active_seconds": 1e300}}, "timings.active_seconds"),
    ],
)
def test_a_huge_number_in_a_submission_is_a_422(
    server: LiveServer, lease: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    r = _submit(server, body(lease, **change))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_a_huge_fence_in_a_batch_item_is_refused_for_that_item(
    server: LiveServer, lease: dict[str, Any]
) -> None:
    with server.client(server.annotator_token) as http:
        item = {"idempotency_key": key(), "annotation": body(lease, fence=HUGE)}
        r = http.post("/v1/annotations/batch", json={"items": [item]})
    assert r.status_code in (200, 422), r.text
    error = r.json()["results"][0]["error"] if r.status_code == 200 else r.json()
    assert "fence" in (error["field"] or "")


# ---------------------------------------------------------------- characters


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("field", ["transcript", "note"])
def test_control_bidi_and_zero_width_characters_are_refused_naming_the_field(
    server: LiveServer, lease: dict[str, Any], kind: str, field: str
) -> None:
    change: dict[str, Any] = {field: HOSTILE[kind]}
    if field == "note":
        change["flags"] = ["distress"]
    r = _submit(server, body(lease, **change))
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["field"] == field
    assert error["reason"] in ("unsafe_character", "control_char")
    assert "\x1b" not in r.text and "\u202e" not in r.text


def test_hostile_release_detail_and_amendment_are_refused(
    server: LiveServer, lease: dict[str, Any]
) -> None:
    with server.client(server.annotator_token) as http:
        other = http.post("/v1/leases", json={"count": 1}).json()["leases"][0]
        release = http.post(
            f"/v1/leases/{other['lease_id']}/release",
            json={"reason": "other", "detail": HOSTILE["osc_and_clear"]},
        )
        assert release.status_code == 422 and release.json()["field"] == "detail"
        ok = http.post(
            "/v1/annotations",
            json=body(other, flags=["distress"], note="call the supervisor"),
            headers={"Idempotency-Key": key()},
        )
        assert ok.status_code == 201, ok.text
        annotation_id = ok.json()["annotation_id"]
        for field in ("transcript", "note"):
            amend = http.patch(
                f"/v1/annotations/{annotation_id}", json={field: HOSTILE["rtl_override"]}
            )
            assert amend.status_code == 422, amend.text
            assert amend.json()["field"] == field
    with server.client(server.supervisor_token) as sup:
        escalations = sup.get("/v1/escalations").text
    assert "call the supervisor" in escalations  # the view is the one we think
    for text in HOSTILE.values():
        assert text not in escalations


def test_hostile_characters_in_a_batch_item_name_the_field(
    server: LiveServer, lease: dict[str, Any]
) -> None:
    item = {"idempotency_key": key(), "annotation": body(lease, transcript=HOSTILE["bom"])}
    with server.client(server.annotator_token) as http:
        r = http.post("/v1/annotations/batch", json={"items": [item]})
    error = r.json()["results"][0]["error"] if r.status_code == 200 else r.json()
    assert "transcript" in (error["field"] or ""), r.text


# ---------------------------------------------------------------- crash logging


@pytest.mark.one_backend  # the crash is planted in SQLite's local audio directory
def test_a_crash_logs_route_and_exception_type_only(server: LiveServer) -> None:
    with server.client(server.annotator_token) as http:
        doomed = http.post("/v1/leases", json={"count": 1}).json()["leases"][0]
        sha = doomed["clip"]["sha256"]
        (audio_file,) = list(server.data_dir.rglob(f"*{sha}*"))
        before = server.log_path.stat().st_size
        audio_file.unlink()
        audio_file.mkdir()  # reading a directory raises inside the route, quoting the path
        try:
            crashed = http.get(f"/v1/leases/{doomed['lease_id']}/audio")
        finally:
            audio_file.rmdir()
    assert crashed.status_code == 500
    assert crashed.json()["reason"] == "internal"
    log = server.log_path.read_bytes()[before:].decode(errors="replace")
    assert "internal error on GET /v1/leases/{lease_id}/audio: IsADirectoryError" in log
    assert "Traceback" not in log and sha not in log and str(server.data_dir) not in log


# ---------------------------------------------------------------- terminals


def test_for_terminal_draws_every_refused_character_as_a_visible_escape() -> None:
    for text in HOSTILE.values():
        drawn = for_terminal(text)
        assert drawn.isprintable(), repr(drawn)
    assert for_terminal("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert for_terminal("\u202e") == "\\u202e"
    assert for_terminal("two\nlines", keep_newlines=True) == "two\nlines"


def test_an_escaping_console_keeps_styles_but_no_injected_control(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        console = escaping_console(
            file=f, force_terminal=True, color_system="standard", highlight=False
        )
        console.print(f"[red]error:[/] {HOSTILE['osc_and_clear']} {HOSTILE['c1_csi']}")
    drawn = out.read_text()
    assert "\x1b[31m" in drawn  # Rich's own colour survives
    assert "\x1b]0" not in drawn and "\x1b[2J" not in drawn and "\x9b" not in drawn
    assert "\\x1b]0;pwned" in drawn


def test_ingest_prints_a_hostile_file_name_escaped(server: LiveServer, tmp_path: Path) -> None:
    evil = tmp_path / "evil\x1b]0;pwned\x07\x1b[2J\u202e.wav"
    evil.write_bytes(b"RIFF not really audio")
    done = subprocess.run(
        [*annotator_command(), "ingest", str(evil), "--db", str(server.db_path),
         "--data", str(server.data_dir)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1  # the file was skipped, and said so
    stderr = done.stderr.decode()
    assert "\x1b" not in stderr and "\u202e" not in stderr and "\x07" not in stderr
    assert "evil\\x1b]0;pwned" in stderr and "\\u202e" in stderr


@pytest.mark.parametrize("kind", ["rtl_override", "osc_and_clear", "zero_width"])
def test_token_create_refuses_a_hostile_name(server: LiveServer, kind: str) -> None:
    done = subprocess.run(
        [*annotator_command(), "token", "create", HOSTILE[kind], "--db", str(server.db_path),
         "--data", str(server.data_dir)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert b"NAME" in done.stderr and b"not allowed" in done.stderr
    assert b"\x1b" not in done.stderr and "\u202e".encode() not in done.stderr
    assert done.stdout == b""  # no token printed


def test_the_client_lint_names_the_same_characters_before_submit() -> None:
    from api.taxonomy import TaxonomyIndex, load_default_taxonomy

    index = TaxonomyIndex(load_default_taxonomy())
    for text in HOSTILE.values():
        problems = index.check_annotation(
            transcript=text, intent="alarm_set", flags=["distress"], note=text
        )
        assert {"transcript", "note"} <= {field for field, _, _ in problems}, text
