"""Quality on both backends (issue 12): gold dealt at its rate and indistinguishable, finished
clips settled (agreeing → final, disagreeing → review), a reviewer's final with provenance, the
reviewer role, the report route. In-process server with a FakeClock (`clocked_server`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api.models import Role
from api.server.quality_rules import Expected
from api.server.quality_store import GoldAnswer, QualityStore
from tests.fixtures.server import ClockedServer
from tests.server.helpers import body, key


def _lease(c: httpx.Client, count: int = 1) -> list[dict[str, Any]]:
    r = c.post("/v1/leases", json={"count": count})
    assert r.status_code == 200, r.text
    return list(r.json()["leases"])


def _submit(c: httpx.Client, lease: dict[str, Any], **fields: Any) -> None:
    r = c.post("/v1/annotations", json=body(lease, **fields), headers={"Idempotency-Key": key()})
    assert r.status_code == 201, r.text


def _shape(value: Any) -> Any:
    """A JSON value's structure: keys and types, no values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_gold_is_dealt_at_its_rate_and_nothing_tells_it_apart(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(gold_rate=0.5)
    ids = server.ingest(test_wavs(60))
    gold_ids = set(ids[:10])  # the first in the queue: the normal claim would reach them first
    store = QualityStore(server.repo)
    store.put_gold(
        [
            GoldAnswer(i, Expected("wake me up at seven", "alarm_set", frozenset()))
            for i in gold_ids
        ],
        server.clock.now(),
    )
    with server.client(server.token("ann")) as c:
        leases = _lease(c, 30)
        assert len(leases) == 30
        gold = [x for x in leases if x["clip"]["clip_id"] in gold_ids]
        normal = [x for x in leases if x["clip"]["clip_id"] not in gold_ids]
        # Binomial(30, 0.5), at most the 10 gold clips: 4..10 outside 1e-3 odds.
        assert 4 <= len(gold) <= 10, len(gold)
        assert normal and _shape(gold[0]) == _shape(normal[0])
        assert {x["expires_at"] for x in leases} == {leases[0]["expires_at"]}
        # Gold clips are not the first 10 in queue order (which the normal claim serves first).
        assert [x["clip"]["clip_id"] for x in normal] == [i for i in ids if i not in gold_ids][
            : len(normal)
        ]
        responses = [c.get(f"/v1/leases/{x['lease_id']}/audio") for x in (gold[0], normal[0])]
        assert [r.status_code for r in responses] == [200, 200]
        assert responses[0].headers.keys() == responses[1].headers.keys()
        assert responses[0].headers["content-type"] == responses[1].headers["content-type"]
        assert responses[0].content[:12] == responses[1].content[:12]  # same RIFF/WAVE canon
        # A gold lease is submitted like any other, once per person.
        _submit(c, gold[0])
    with server.client(server.token("ann2")) as c2:
        # Everyone may be dealt the same gold clip (it is not used up by one annotation).
        leases2 = _lease(c2, 50)
        assert gold[0]["clip"]["clip_id"] in {x["clip"]["clip_id"] for x in leases2} or len(
            [x for x in leases2 if x["clip"]["clip_id"] in gold_ids]
        ) < len(gold_ids)


def test_no_gold_at_rate_zero(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(gold_rate=0.0)
    ids = server.ingest(test_wavs(12))
    QualityStore(server.repo).put_gold(
        [GoldAnswer(ids[0], Expected("x", "alarm_set", frozenset()))], server.clock.now()
    )
    with server.client(server.token("ann")) as c:
        got = [x["clip"]["clip_id"] for x in _lease(c, 20)]
    assert got == ids[1:]


def test_disagreements_reach_review_and_the_reviewers_final_is_kept(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(gold_rate=0.0, annotations_per_clip=2)
    ids = server.ingest(test_wavs(4))
    answers = {
        # clip: (first person's, second person's) transcript and intent
        ids[0]: (("wake me up at seven", "alarm_set"), ("wake me up at seven", "alarm_set")),
        ids[1]: (("wake me up at seven", "alarm_set"), ("wake me up at seven", "alarm_query")),
        ids[2]: (("play some jazz music now", "alarm_set"), ("play the news", "alarm_set")),
        # one word in 5 differs: 0.2 is not beyond the threshold
        ids[3]: (("set an alarm for six", "alarm_set"), ("set an alarm for ten", "alarm_set")),
    }
    for who in (0, 1):
        with server.client(server.token(f"ann{who}")) as c:
            for lease in _lease(c, 4):
                transcript, intent = answers[lease["clip"]["clip_id"]][who]
                _submit(c, lease, transcript=transcript, intent=intent)
        server.clock.advance(1)  # ann0's come first

    with server.client(server.token("ann9")) as c:
        assert c.get("/v1/reviews").status_code == 403
        assert c.get("/v1/quality/report").status_code == 403
    reviewer = server.token("rev", Role.REVIEWER)
    with server.client(reviewer) as c:
        r = c.get("/v1/reviews")
        assert r.status_code == 200, r.text
        items = {i["clip_id"]: i for i in r.json()["items"]}
        assert set(items) == {ids[1], ids[2]}
        assert items[ids[1]]["reasons"] == ["intent"]
        assert items[ids[2]]["reasons"] == ["transcript"]
        assert {a["annotator"] for a in items[ids[1]]["annotations"]} == {"ann0", "ann1"}
        assert "source_name" not in r.text
        audio = c.get(f"/v1/reviews/{ids[1]}/audio")
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
        assert c.get(f"/v1/reviews/{ids[0]}/audio").status_code == 404  # not under review
        # The reviewer's final: checked against the taxonomy like an annotation.
        bad = c.post(f"/v1/reviews/{ids[1]}/final", json={"transcript": "x", "intent": "nope"})
        assert bad.status_code == 422
        final = {"transcript": "wake me up at seven", "intent": "alarm_query", "flags": []}
        r = c.post(f"/v1/reviews/{ids[1]}/final", json=final)
        assert r.status_code == 201, r.text
        assert r.json()["decided_by"] == "rev"
        sources = {a["annotation_id"] for a in items[ids[1]]["annotations"]}
        assert set(r.json()["from_annotations"]) == sources
        assert c.post(f"/v1/reviews/{ids[1]}/final", json=final).status_code == 404
        assert {i["clip_id"] for i in c.get("/v1/reviews").json()["items"]} == {ids[2]}
        assert c.get("/v1/quality/report").status_code == 403  # a reviewer is not a supervisor

    finals = {f.clip_id: f for f in QualityStore(server.repo).finals()}
    assert set(finals) == {ids[0], ids[1], ids[3]}
    assert (finals[ids[0]].decided_by, finals[ids[0]].intent) == ("auto", "alarm_set")
    assert (finals[ids[1]].decided_by, finals[ids[1]].intent) == ("rev", "alarm_query")
    assert finals[ids[3]].transcript == "set an alarm for six"  # the earlier of two equals

    with server.client(server.token("sup", Role.SUPERVISOR)) as c:
        report = c.get("/v1/quality/report")
        assert report.status_code == 200, report.text
        people = {p["annotator"]: p for p in report.json()["people"]}
        assert people["ann0"]["clips"] == 4 and people["ann0"]["shared_clips"] == 4
        # intents matched on 3 of the 4 shared clips
        assert people["ann0"]["intent_agreement"] == 0.75
        assert c.get("/v1/reviews").status_code == 200  # supervisors review too


def test_an_amended_annotation_is_settled_again(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(gold_rate=0.0, annotations_per_clip=2)
    (clip,) = server.ingest(test_wavs(1))
    made = []
    for who in (0, 1):
        with server.client(server.token(f"a{who}")) as c:
            (lease,) = _lease(c)
            r = c.post("/v1/annotations", json=body(lease), headers={"Idempotency-Key": key()})
            made.append((c.headers["Authorization"], r.json()["annotation_id"]))
    store = QualityStore(server.repo)
    assert store.settle(server.clock.now()) == (1, 0)
    server.clock.advance(5)
    with httpx.Client(base_url=server.url, headers={"Authorization": made[1][0]}) as c:
        r = c.patch(f"/v1/annotations/{made[1][1]}", json={"intent": "alarm_query"})
        assert r.status_code == 200, r.text
    assert store.settle(server.clock.now()) == (0, 1)
    assert [c.clip_id for c in store.review_cases(10)] == [clip]
