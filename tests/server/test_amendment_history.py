"""Issue 10 finding 8: an amend cannot erase why a clip was escalated, and every amendment is
kept (append-only history, both backends). Real server on loopback (FakeClock)."""

from __future__ import annotations

import httpx
import pytest

from api.client import QueueClient, RequestRejected, new_idempotency_key
from api.models import AnnotationPatch
from api.server.amendment_log import AmendmentStore
from tests.fixtures.server import ClockedServer
from tests.server.helpers import annotation


def _escalated(server: ClockedServer, test_wavs) -> tuple[QueueClient, str, str]:
    token = server.token("alice")
    alice = QueueClient(server.url, token)
    server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    receipt = alice.submit(
        annotation(lease, flags=["self_harm", "unintelligible"], note="says they want to end it"),
        new_idempotency_key(),
    )
    return alice, receipt.annotation_id, token


def test_the_erasing_amend_of_the_finding_is_refused_with_a_clear_message(
    clocked_server: ClockedServer, test_wavs
) -> None:
    _, annotation_id, token = _escalated(clocked_server, test_wavs)
    with httpx.Client(
        base_url=clocked_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as h:
        r = h.patch(f"/v1/annotations/{annotation_id}", json={"flags": [], "note": None})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "escalation_kept" and body["field"] == "flags"
    assert "self_harm" in body["message"] and "supervisor" in body["message"]
    supervisor = QueueClient(clocked_server.url, clocked_server.token("sue", "supervisor"))
    (listed,) = supervisor.escalations().escalations
    assert (
        listed.flags == ["self_harm", "unintelligible"]
        and listed.note == "says they want to end it"
    )


def test_the_note_stays_but_may_grow_and_other_flags_may_go(
    clocked_server: ClockedServer, test_wavs
) -> None:
    alice, annotation_id, token = _escalated(clocked_server, test_wavs)
    h = httpx.Client(base_url=clocked_server.url, headers={"Authorization": f"Bearer {token}"})
    for patch, field in (
        ({"note": None}, "note"),
        ({"note": "nothing"}, "note"),
        ({"flags": ["unintelligible"]}, "flags"),
    ):
        r = h.patch(f"/v1/annotations/{annotation_id}", json=patch)
        assert r.status_code == 422, (patch, r.text)
        assert r.json()["field"] == field
        # (no note at all is already refused by the taxonomy: an escalation flag needs one)
        assert r.json()["reason"] in (
            {"escalation_kept", "note_required"} if patch == {"note": None} else {"escalation_kept"}
        )
    h.close()
    kept = alice.amend(
        annotation_id,
        AnnotationPatch(flags=["self_harm", "distress"], note="says they want to end it; crying"),
    )
    assert kept.flags == ["self_harm", "distress"]
    assert kept.note == "says they want to end it; crying"


def test_every_amendment_is_kept_with_who_when_before_and_after(
    clocked_server: ClockedServer, test_wavs
) -> None:
    alice_token = clocked_server.token("alice")
    alice = QueueClient(clocked_server.url, alice_token)
    clocked_server.ingest(test_wavs(1))
    lease = alice.lease().leases[0]
    receipt = alice.submit(annotation(lease, note="first"), new_idempotency_key())
    clocked_server.clock.advance(10)
    alice.amend(receipt.annotation_id, AnnotationPatch(intent="alarm_query"))
    clocked_server.clock.advance(10)
    with httpx.Client(
        base_url=clocked_server.url, headers={"Authorization": f"Bearer {alice_token}"}
    ) as h:
        r = h.patch(
            f"/v1/annotations/{receipt.annotation_id}",
            json={"transcript": "wake me at 8", "note": None},
        )
        assert r.status_code == 200, r.text
    with pytest.raises(RequestRejected):  # refused amends leave no history
        alice.amend(receipt.annotation_id, AnnotationPatch(intent="no_such_intent"))
    history = AmendmentStore(clocked_server.repo).history(receipt.annotation_id)
    assert [h.annotator for h in history] == ["alice", "alice"]
    assert history[1].amended_at > history[0].amended_at
    assert history[0].before.intent == "alarm_set" and history[0].after.intent == "alarm_query"
    assert history[0].before.note == "first" and history[1].before.note == "first"
    assert history[1].after.note is None
    assert history[1].before.transcript == "wake me up at seven"
    assert history[1].after.transcript == "wake me at 8"
    # The current values are the last "after" (annotations keep only the latest).
    current = clocked_server.repo.get_annotation(receipt.annotation_id)
    assert current.content.transcript == "wake me at 8" and current.content.note is None
