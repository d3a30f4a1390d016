"""Idempotency, batch, escalations and export against a real `annotator serve`."""

from __future__ import annotations

import json
import subprocess

import pytest

from api.client import QueueClient, RequestRejected, new_idempotency_key
from api.models import BatchItem, ExportRecord
from tests.fixtures.server import LiveServer, annotator_command
from tests.server.helpers import annotation, body, key


def test_same_key_same_body_returns_the_same_receipt_and_stores_nothing(
    live_server: LiveServer, test_wavs
) -> None:
    live_server.ingest(test_wavs(1))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    lease = ann.lease().leases[0]
    k = new_idempotency_key()
    first = ann.submit(annotation(lease), k)
    again = ann.submit(annotation(lease), k)
    assert again == first
    with live_server.client(live_server.admin_token) as admin:
        lines = admin.get("/v1/export").text.splitlines()
    assert len(lines) == 1


def test_same_key_other_body_is_refused(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    lease = ann.lease().leases[0]
    k = new_idempotency_key()
    ann.submit(annotation(lease), k)
    with pytest.raises(RequestRejected) as e:
        ann.submit(annotation(lease, transcript="wake me up at eight"), k)
    assert e.value.status_code == 422
    assert e.value.reason == "idempotency_mismatch"
    assert e.value.error.field == "Idempotency-Key"


def test_replay_status_codes(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    with live_server.client(live_server.annotator_token) as http:
        lease = http.post("/v1/leases", json={}).json()["leases"][0]
        k = key()
        created = http.post("/v1/annotations", json=body(lease), headers={"Idempotency-Key": k})
        replay = http.post("/v1/annotations", json=body(lease), headers={"Idempotency-Key": k})
    assert created.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == created.json()


def test_batch_gives_per_item_results(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(3))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    leases = ann.lease(count=3).leases
    good = BatchItem(idempotency_key=key(), annotation=annotation(leases[0]))
    stale = BatchItem(idempotency_key=key(), annotation=annotation(leases[1], fence=99))
    also_good = BatchItem(idempotency_key=key(), annotation=annotation(leases[2]))
    first = ann.submit_batch([good, stale, also_good]).results
    assert [r.status_code for r in first] == [201, 409, 201]
    assert first[1].error is not None and first[1].error.reason == "stale_fence"
    # The same batch again (an offline client retrying): replays, same receipts.
    second = ann.submit_batch([good, stale, also_good]).results
    assert [r.status_code for r in second] == [200, 409, 200]
    assert second[0].receipt == first[0].receipt


def test_batch_item_with_bad_shape_fails_alone(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    with live_server.client(live_server.annotator_token) as http:
        lease = http.post("/v1/leases", json={}).json()["leases"][0]
        items = [
            {"idempotency_key": "short", "annotation": body(lease)},
            {"idempotency_key": key(), "annotation": body(lease, intent="not_an_intent")},
            {"idempotency_key": key(), "annotation": {**body(lease), "colour": "red"}},
            {"idempotency_key": key(), "annotation": body(lease)},
        ]
        r = http.post("/v1/annotations/batch", json={"items": items})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status_code"] for x in results] == [422, 422, 422, 201]
    assert results[0]["error"]["field"] == "items.0.idempotency_key"
    assert results[1]["error"]["reason"] == "unknown_intent"
    assert results[2]["error"]["field"] == "items.2.annotation.colour"


def test_batch_envelope_limits(live_server: LiveServer) -> None:
    with live_server.client(live_server.annotator_token) as http:
        empty = http.post("/v1/annotations/batch", json={"items": []})
        too_many = http.post("/v1/annotations/batch", json={"items": [{}] * 501})
        not_json = http.post(
            "/v1/annotations/batch", content=b"[", headers={"Content-Type": "application/json"}
        )
    assert empty.status_code == 422 and empty.json()["field"] == "items"
    assert too_many.status_code == 422 and too_many.json()["field"] == "items"
    assert not_json.status_code == 422 and not_json.json()["reason"] == "malformed_json"


def test_escalation_needs_a_note_and_is_listed_at_once(live_server: LiveServer, test_wavs) -> None:
    live_server.ingest(test_wavs(1))
    ann = QueueClient(live_server.url, live_server.annotator_token)
    supervisor = QueueClient(live_server.url, live_server.supervisor_token)
    lease = ann.lease().leases[0]
    with pytest.raises(RequestRejected) as e:
        ann.submit(annotation(lease, flags=["distress"]), key())
    assert e.value.status_code == 422
    assert e.value.reason == "note_required" and e.value.error.field == "note"
    assert supervisor.escalations().escalations == []

    receipt = ann.submit(
        annotation(lease, flags=["distress", "pii"], note="someone shouting for help"), key()
    )
    listed = supervisor.escalations().escalations
    assert [x.annotation_id for x in listed] == [receipt.annotation_id]
    assert listed[0].annotator == "ann1"
    assert listed[0].note == "someone shouting for help"
    assert listed[0].flags == ["distress", "pii"]


def test_export_jsonl_over_http_and_from_the_command(live_server: LiveServer, test_wavs) -> None:
    files = test_wavs(2)
    live_server.ingest(files)
    ann = QueueClient(live_server.url, live_server.annotator_token)
    receipts = [ann.submit(annotation(lease), key()) for lease in ann.lease(count=2).leases]
    admin = QueueClient(live_server.url, live_server.admin_token)
    records = [ExportRecord.model_validate_json(line) for line in admin.export_jsonl()]
    assert [r.annotation_id for r in records] == [r.annotation_id for r in receipts]
    assert [r.source_name for r in records] == [f.name for f in files]
    assert all(r.annotator == "ann1" and r.taxonomy_version for r in records)

    out = live_server.root / "export.jsonl"
    done = subprocess.run(
        [
            *annotator_command(),
            "export",
            "--db",
            live_server.db,
            "--data",
            str(live_server.data_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "exported 2 annotations" in done.stderr
    lines = out.read_text().splitlines()
    assert [json.loads(line)["annotation_id"] for line in lines] == [
        r.annotation_id for r in records
    ]
    assert out.stat().st_mode & 0o077 == 0  # the export holds transcripts: owner only
