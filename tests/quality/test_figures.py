"""The stored per-clip figures (`api.server.quality_figures`) give the report `build_report` gives
from every annotation, on both backends: after submissions, an amendment (it must update them), an
adjudication, a gold import; and at >= 200 clips, where the overall agreement comes from the
stored totals instead of the clips' labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.models import Role
from api.server.backends import open_repository
from api.server.quality_figures import QualityFigures
from api.server.quality_rules import SMALL_SAMPLE, Expected, Report, Thresholds, build_report
from api.server.quality_store import GoldAnswer, QualityStore
from tests.fixtures.server import ClockedServer
from tests.quality.rows import insert_queue, random_queue
from tests.server.helpers import body, key

FLAGS = ["pii", "unintelligible"]
LIMITS = Thresholds()


def _same(got: Any, want: Any, where: str = "report") -> None:
    """Equal, floats to 1e-12 (sums taken in another order), everything else exactly."""
    if dataclasses.is_dataclass(want):
        assert type(got) is type(want), where
        for f in dataclasses.fields(want):
            _same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
    elif isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            _same(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), where
    else:
        assert got == want, where


def _fresh(store: QualityStore, now: float | None) -> Report:
    """The direct computation, over the server's taxonomy's flags (as the route reports)."""
    from api.taxonomy import load_taxonomy

    flags = [f.id for f in load_taxonomy(None).flags]
    return build_report(store.labels(), store.gold(), flags, LIMITS, now)


def _submit(c: Any, lease: dict[str, Any], **fields: Any) -> str:
    r = c.post("/v1/annotations", json=body(lease, **fields), headers={"Idempotency-Key": key()})
    assert r.status_code == 201, r.text
    return str(r.json()["annotation_id"])


def test_stored_figures_follow_amendments_adjudication_and_gold(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(gold_rate=0.0, annotations_per_clip=3)
    ids = server.ingest(test_wavs(5))
    # Per clip, what each of three people says: (transcript, intent, flags).
    said = {
        ids[0]: [("wake me up at seven", "alarm_set", [])] * 3,
        ids[1]: [
            ("wake me up at seven", "alarm_set", ["pii"]),
            ("wake me up at seven", "alarm_query", []),
            ("wake me at seven", "alarm_set", ["pii"]),
        ],
        ids[2]: [
            ("play some jazz", "alarm_set", []),
            ("play the news", "alarm_set", ["unintelligible"]),
            ("play some jazz", "alarm_query", []),
        ],
        ids[3]: [("set an alarm for six", "alarm_set", [])] * 3,
        ids[4]: [("what time is it", "alarm_query", [])] * 3,
    }
    made: dict[tuple[str, int], tuple[str, str]] = {}
    for who in range(3):
        token = server.token(f"ann{who}")
        with server.client(token) as c:
            r = c.post("/v1/leases", json={"count": 5})
            for lease in r.json()["leases"]:
                clip = lease["clip"]["clip_id"]
                t, i, f = said[clip][who]
                made[(clip, who)] = (token, _submit(c, lease, transcript=t, intent=i, flags=f))
                server.clock.advance(30)
    store = QualityStore(server.repo)
    figures = QualityFigures(store)
    now = server.clock.now().timestamp()
    sup = server.token("sup", Role.SUPERVISOR)

    def route() -> Report:
        from pydantic import TypeAdapter

        with server.client(sup) as c:
            r = c.get("/v1/quality/report")
        assert r.status_code == 200, r.text
        return TypeAdapter(Report).validate_json(r.content)

    first = route()
    _same(first, _fresh(store, now))
    assert first.overall.clips == 5 and len(first.pairs) == 3
    assert figures.refresh() == (0, 0)  # nothing stale once reported
    pair01 = {(p.a, p.b): p for p in first.pairs}[("ann0", "ann1")].agreement
    assert set(pair01.flag_alpha) == {"pii", "unintelligible"}  # the flags either gave

    # An amendment: ann1 now agrees on clip 1's intent and gives its flag.
    token, annotation = made[(ids[1], 1)]
    server.clock.advance(5)
    with server.client(token) as c:
        r = c.patch(f"/v1/annotations/{annotation}", json={"intent": "alarm_set", "flags": ["pii"]})
        assert r.status_code == 200, r.text
    with server.repo._read() as conn:
        stale = server.repo._x(conn, "SELECT clip_id FROM quality_stale").fetchall()
    assert [r[0] for r in stale] == [ids[1]]  # the trigger marked it
    amended = route()
    _same(amended, _fresh(store, now + 5))
    after01 = {(p.a, p.b): p for p in amended.pairs}[("ann0", "ann1")].agreement
    assert after01.intent_alpha != pair01.intent_alpha  # the stored pair figures moved
    assert amended.overall.intent_alpha.value != first.overall.intent_alpha.value

    # An adjudication changes no annotation: the same figures, nothing recomputed.
    rev = server.token("rev", Role.REVIEWER)
    with server.client(rev) as c:
        items = c.get("/v1/reviews").json()["items"]
        # clip 1: "wake me at seven" is 1 edit in 4 words from the others' (WER 0.25)
        assert {i["clip_id"] for i in items} == {ids[1], ids[2]}
        final = {"transcript": "play some jazz", "intent": "alarm_set", "flags": []}
        assert c.post(f"/v1/reviews/{ids[2]}/final", json=final).status_code == 201
    assert figures.refresh() == (0, 0)
    _same(route(), _fresh(store, now + 5))

    # A gold import takes the clip out of agreement (its figures go).
    store.put_gold(
        [GoldAnswer(ids[4], Expected("what time is it", "alarm_query", frozenset()))],
        server.clock.now(),
    )
    golden = route()
    _same(golden, _fresh(store, now + 5))
    assert golden.overall.clips == 4
    assert all(p.gold.intent_accuracy == 1.0 for p in golden.people)


def test_at_scale_the_overall_figures_come_from_stored_totals(
    tmp_path: Path, new_db_url: Callable[[Path], str]
) -> None:
    repo = open_repository(new_db_url(tmp_path / "db"), tmp_path / "data")
    try:
        insert_queue(repo, *random_queue(SMALL_SAMPLE + 60, seed=3, flags=FLAGS))
        store = QualityStore(repo)
        got = QualityFigures(store).report(FLAGS, LIMITS, 7200.0)
        want = build_report(store.labels(), store.gold(), FLAGS, LIMITS, 7200.0)
        _same(got, want)
        assert got.overall.clips == SMALL_SAMPLE + 60 and got.overall.intent_alpha.low is None
        assert {f for p in got.pairs for f in p.agreement.flag_alpha} == set(FLAGS)
        assert sum(h.annotations for h in got.series) == len(store.labels())  # all in range
        # Everything stale again, recomputed 37 clips a transaction: the same figures.
        with repo._write() as conn:
            repo._x(conn, "INSERT INTO quality_stale (clip_id) SELECT clip_id FROM clips")
        figures = QualityFigures(store)
        assert figures.refresh(batch=37)[0] == SMALL_SAMPLE + 60
        _same(figures.report(FLAGS, LIMITS, 7200.0), want)
        # A person's annotations deleted: the delete trigger marks their clips, their pairs go.
        with repo._write() as conn:
            repo._x(conn, "DELETE FROM annotations WHERE annotator = 'p5'")
        fewer = figures.report(FLAGS, LIMITS, 7200.0)
        assert all("p5" not in (p.a, p.b) for p in fewer.pairs) and len(fewer.pairs) == 10
        _same(fewer, build_report(store.labels(), store.gold(), FLAGS, LIMITS, 7200.0))
    finally:
        repo.close()
