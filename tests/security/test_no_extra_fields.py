"""Annotator-facing responses carry only the documented fields, and nothing customer-like.

Raw JSON keys are compared, recursively, with the field sets of the `api.models` response models
(the client ignores unknown fields, so an extra one would leak silently). Then every body and
header an annotator receives — successes and refusals — is searched for what must never reach
them: the ingested file's name (`source_name`), server paths, other people's names, tokens.
"""

from __future__ import annotations

import json
import types
from typing import Any, Union, get_args, get_origin

import httpx
import pytest
from pydantic import BaseModel

from api.models import (
    Annotation,
    BatchResponse,
    ErrorBody,
    Health,
    LeaseList,
    LeaseState,
    Receipt,
    Stats,
    Taxonomy,
)
from tests.fixtures.server import LiveServer, start_live_server, wav_bytes
from tests.security.support import key

#: A recording's original file name says where it came from: a customer's household.
CUSTOMER_DIR = "household-okonkwo-4471"
CUSTOMER_FILE = "okonkwo-kitchen-echo-dot-2024-03-02T0712.wav"
OTHER_NAME = "Beatrix Quillfeather"  # another annotator's display name
ANN_NAME = "Ansel Marchbanks"  # the annotator under test (its own name is not needed either)


def _model_of(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel types inside an annotation like `list[Lease]`, `Receipt | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset, Union, types.UnionType) or origin is not None:
        found: list[type[BaseModel]] = []
        for arg in get_args(annotation):
            found.extend(_model_of(arg))
        return found
    return []


def assert_documented(data: Any, model: type[BaseModel], where: str = "$") -> None:
    """Every key in `data` is a field of `model` (recursively); every required field is there."""
    assert isinstance(data, dict), f"{where}: expected an object for {model.__name__}, got {data!r}"
    fields = model.model_fields
    extra = set(data) - set(fields)
    assert not extra, f"{where}: undocumented field(s) {sorted(extra)} in {model.__name__}"
    required = {name for name, f in fields.items() if f.is_required()}
    missing = required - set(data)
    assert not missing, f"{where}: {model.__name__} is missing {sorted(missing)}"
    for name, value in data.items():
        models = _model_of(fields[name].annotation)
        if not models or value is None:
            continue
        (inner,) = models  # no field in the contract is a union of two models
        values = value if isinstance(value, list) else [value]
        for i, item in enumerate(values):
            assert_documented(item, inner, f"{where}.{name}[{i}]")


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("shapes")
    server = start_live_server(root)
    src = root / CUSTOMER_DIR
    src.mkdir()
    paths = []
    for i in range(12):
        p = src / f"{i:02d}-{CUSTOMER_FILE}"
        p.write_bytes(wav_bytes(1000 + i))
        paths.append(p)
    server.ingest(paths)
    other = server.new_token(OTHER_NAME)
    me = server.new_token(ANN_NAME)
    yield server, me, other
    server.stop()


def _forbidden(server: LiveServer, me: str, other: str) -> list[str]:
    return [
        "source_name",
        CUSTOMER_FILE,
        CUSTOMER_DIR,
        "okonkwo",
        str(server.root),
        str(server.data_dir),
        ".wav",
        OTHER_NAME,
        ANN_NAME,
        me,
        other,
        server.admin_token,
        server.supervisor_token,
    ]


def _assert_clean(r: httpx.Response, forbidden: list[str], what: str) -> None:
    haystacks = [f"{k}: {v}" for k, v in r.headers.items()]
    if not r.headers.get("content-type", "").startswith("audio/"):
        haystacks.append(r.text)
    for hay in haystacks:
        for needle in forbidden:
            assert needle.lower() not in hay.lower(), f"{what}: {needle!r} reached the annotator"


def test_annotator_responses_carry_only_documented_fields(shaped: Any) -> None:
    server, me, other = shaped
    forbidden = _forbidden(server, me, other)
    seen: list[tuple[str, httpx.Response, type[BaseModel] | None]] = []

    with server.client(other) as theirs:
        their_lease = theirs.post("/v1/leases", json={"count": 1}).json()["leases"][0]
        body = {
            "lease_id": their_lease["lease_id"],
            "fence": their_lease["fence"],
            "transcript": "turn on the lights",
            "intent": "iot_hue_lighton",
        }
        r = theirs.post("/v1/annotations", json=body, headers={"Idempotency-Key": key()})
        assert r.status_code == 201, r.text
        their_annotation = r.json()["annotation_id"]
        their_live = theirs.post("/v1/leases", json={"count": 1}).json()["leases"][0]

    with server.client(me) as c:
        seen.append(("health", c.get("/v1/health"), Health))
        seen.append(("taxonomy", c.get("/v1/taxonomy"), Taxonomy))
        r = c.post("/v1/leases", json={"count": 3})
        seen.append(("lease", r, LeaseList))
        leases = r.json()["leases"]
        assert len(leases) == 3
        lease = leases[0]
        lid = lease["lease_id"]
        seen.append(("renew", c.post(f"/v1/leases/{lid}/renew", json={}), LeaseState))
        audio = c.get(f"/v1/leases/{lid}/audio")
        assert audio.status_code == 200
        sub = {
            "lease_id": lid,
            "fence": lease["fence"],
            "transcript": "set an alarm",
            "intent": "alarm_set",
        }
        r = c.post("/v1/annotations", json=sub, headers={"Idempotency-Key": key()})
        seen.append(("submit", r, Receipt))
        annotation_id = r.json()["annotation_id"]
        item = {
            "idempotency_key": key(),
            "annotation": {**sub, "lease_id": leases[1]["lease_id"], "fence": leases[1]["fence"]},
        }
        bad_item = {"idempotency_key": key(), "annotation": {**sub, "intent": "nope"}}
        seen.append(
            ("batch", c.post("/v1/annotations/batch", json={"items": [item, bad_item]}), None)
        )
        seen.append(
            ("amend", c.patch(f"/v1/annotations/{annotation_id}", json={"note": "x"}), Annotation)
        )
        seen.append(("stats", c.get("/v1/me/stats"), Stats))
        released = c.post(f"/v1/leases/{leases[2]['lease_id']}/release", json={"reason": "other"})
        assert released.status_code == 204 and released.content == b""
        # refusals an annotator can provoke, including about someone else's things
        refusals = [
            c.post(f"/v1/leases/{their_live['lease_id']}/renew", json={}),
            c.get(f"/v1/leases/{their_live['lease_id']}/audio"),
            c.patch(f"/v1/annotations/{their_annotation}", json={"transcript": "x"}),
            c.post(
                "/v1/annotations",
                json={**sub, "lease_id": their_live["lease_id"], "fence": their_live["fence"]},
                headers={"Idempotency-Key": key()},
            ),
            c.post("/v1/annotations", json=sub, headers={"Idempotency-Key": key()}),
            c.get("/v1/escalations"),
            c.get("/v1/export"),
            c.get(f"/v1/leases/{lid}/audio"),
        ]
        for i, r in enumerate(refusals):
            assert r.status_code >= 400, r.text
            seen.append((f"refusal {i}", r, ErrorBody))

    for what, r, model in seen:
        assert r.status_code < 500, f"{what}: {r.status_code} {r.text}"
        data = r.json()
        if model is None:  # the batch: its envelope, then each item's own shape
            assert_documented(data, BatchResponse, what)
            codes = [item["status_code"] for item in data["results"]]
            assert codes == [201, 422], data
        else:
            assert_documented(data, model, what)
        _assert_clean(r, forbidden, what)

    _assert_clean(audio, forbidden, "audio")
    assert "content-disposition" not in audio.headers
    assert audio.headers["cache-control"] == "no-store"
    assert audio.headers.get("x-content-type-options") == "nosniff"
    assert "server" not in audio.headers


def test_lease_carries_exactly_the_clip_fields(shaped: Any) -> None:
    """The literal allow-list from the contract: a new field must be a deliberate change here."""
    server, me, _ = shaped
    with server.client(me) as c:
        lease = c.post("/v1/leases", json={"count": 1}).json()["leases"][0]
    assert set(lease) == {"lease_id", "fence", "expires_at", "clip"}
    assert set(lease["clip"]) == {
        "clip_id",
        "duration_s",
        "sample_rate",
        "channels",
        "locale",
        "sha256",
        "asr_hint",
        "asr_words",  # the machine draft's words and confidences (issue 13)
        "suggested_intents",  # the server's top three intents from the draft (issue 13)
    }
    # Clip ids are opaque: not the file name, not its hash, not a counter.
    assert lease["clip"]["clip_id"] not in json.dumps(lease["clip"]["sha256"])
    assert not lease["clip"]["clip_id"].isdigit()


def test_openapi_models_for_annotators_name_no_customer_fields(shaped: Any) -> None:
    """The published schema itself: no annotator-facing component documents a customer field."""
    server, _, _ = shaped
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    components = schema["components"]["schemas"]
    suspicious = ("source", "customer", "account", "device", "household", "path", "file", "user")
    for name in ("Clip", "Lease", "LeaseList", "LeaseState", "Receipt", "Annotation", "Stats"):
        props = set(components[name].get("properties", {}))
        for prop in props:
            assert not any(s in prop.lower() for s in suspicious), f"{name}.{prop}"


def test_assert_documented_catches_an_extra_field() -> None:
    """The checker itself: a nested extra key is found, so the tests above can fail."""
    lease: dict[str, Any] = {
        "lease_id": "a",
        "fence": 1,
        "expires_at": "2030-01-01T00:00:00Z",
        "clip": {
            "clip_id": "c",
            "duration_s": 1.0,
            "sample_rate": 16000,
            "channels": 1,
            "locale": "en-US",
            "sha256": "0" * 64,
            "asr_hint": None,
            "source_name": "kitchen.wav",
        },
    }
    with pytest.raises(AssertionError, match="source_name"):
        assert_documented({"leases": [lease]}, LeaseList)
    del lease["clip"]["source_name"]
    assert_documented({"leases": [lease]}, LeaseList)
