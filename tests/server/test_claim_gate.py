"""The welfare break check that travels inside the claim's statement (`WelfareStore.claim_gate`)
says "go ahead" exactly when the full rules (`WelfareService`: the last break, `work_times`,
`_due`) would let a lease through without a word — on random histories, on both backends. A
gate that opened where the rules refuse would hand out clips during a break; one that closed
where they allow would only cost the slow path, but is compared all the same."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.server.clock import FakeClock
from api.server.settings import ServerSettings
from api.server.welfare import LOOKBACK_S, WelfareService
from api.server.welfare_store import HEARD_BEFORE_S, Break
from tests.fixtures.server import open_repo

NOW = 10_000_000.0
REST = 15 * 60.0


@pytest.fixture
def repo(tmp_path: Path, new_db_url: Callable[[Path], str]) -> Iterator[Any]:
    r = open_repo(new_db_url(tmp_path), tmp_path / "data")
    try:
        yield r
    finally:
        r.close()


def _history(
    draw: random.Random, limit: float
) -> tuple[list[float], list[tuple[float, int]], list[Break]]:
    """Person p's submission times: runs of work lasting about the continuous limit (just under,
    at, just over), apart by about a break's length, the last ending about a break's length
    before now or still going, some ties, some before the lookback; escalated annotations by
    others on some of those clips (some flagged too long before, some by two people); maybe a
    break of p's."""
    span = limit or 3600.0
    runs: list[list[float]] = []
    end = NOW - draw.choice([0, 1, REST - 1, REST, REST + 1, 3600, -60])
    for _ in range(draw.randint(0, 4)):
        length = draw.choice([span - 60, span - 1, span, span + 1, span / 2, 0])
        start = end - length
        run = [start + k * 300.0 for k in range(int(length // 300) + 1)] + [end]
        runs.append(run + ([end] if draw.random() < 0.2 else []))
        end = start - draw.choice([REST - 1, REST, REST + 1, 3 * 3600, LOOKBACK_S])
    times = sorted(t for run in runs for t in run)
    escalated = [
        (times[i] - draw.choice([0, 60, HEARD_BEFORE_S - 60, HEARD_BEFORE_S + 60]), i)
        for i in range(len(times))
        if draw.random() < 0.25
    ]
    # Some clips escalated by two people (K > 1): still one flagged clip for p.
    escalated += [(t - draw.choice([0, 30]), i) for t, i in escalated if draw.random() < 0.3]
    breaks: list[Break] = []
    if draw.random() < 0.5:
        stop = NOW - draw.choice([-60, 0, 1, 1800, span, 2 * span, 30 * 3600])
        breaks.append(Break("p", stop - REST, stop, "flagged"))
    return times, escalated, breaks


def _run(end: float, length: float) -> list[float]:
    return [end - length + k * 300.0 for k in range(int(length // 300))] + [end]


def _edges(limit: float) -> list[tuple[list[float], list[tuple[float, int]], list[Break]]]:
    """Histories on the rules' edges: a run just under the limit that ended exactly a break's
    length ago (over: not going on) or a second less (still going: it lasts until now); runs
    exactly at and just under the limit (some up to now); two runs apart by exactly a break's
    length (two runs) or a second less (one)."""
    span = limit or 3600.0
    half = span / 2 + 60
    return [
        (_run(NOW - REST, span - 60), [], []),
        (_run(NOW - REST + 1, span - 60), [], []),
        (_run(NOW - 3600, span), [], []),
        (_run(NOW, span), [], []),  # exactly the limit, up to now
        (_run(NOW, span - 1), [], []),
        (_run(NOW - 3600, span - 1), [], []),
        (_run(NOW - 4 * 3600 - half - REST, half) + _run(NOW - 4 * 3600, half), [], []),
        (_run(NOW - 4 * 3600 - half - REST + 1, half) + _run(NOW - 4 * 3600, half), [], []),
    ]


def _store(
    repo: Any, times: list[float], escalated: list[tuple[float, int]], br: list[Break]
) -> None:
    row = (
        "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator, idempotency_key,"
        " request_hash, body, transcript, intent, flags, status, escalated, taxonomy_version,"
        " created_at) VALUES (?, ?, 'l', ?, ?, 'h', '{}', 't', 'i', '[]', 'accepted', ?, 'v', ?)"
    )
    with repo._write() as conn:
        repo._x(conn, "DELETE FROM annotations")
        repo._x(conn, "DELETE FROM welfare_breaks")
        for i, t in enumerate(times):
            repo._x(conn, row, (f"a{i}", f"c{i}", "p", f"k{i}", 0, t))
        for j, (t, i) in enumerate(escalated):
            repo._x(conn, row, (f"e{j}", f"c{i}", f"q{j}", f"k{j}", 1, t))
        for b in br:
            repo._x(
                conn,
                "INSERT INTO welfare_breaks (person, started_at, ends_at, reason)"
                " VALUES (?, ?, ?, ?)",
                (b.person, b.started_at, b.ends_at, b.reason),
            )


def _rules_let_through(welfare: WelfareService) -> bool:
    """The full rules' first look, without recording a break: no break on, none due."""
    last = welfare.store.last_break("p")
    if last is not None and last.ends_at > NOW:
        return False
    since = last.ends_at if last is not None else NOW - LOOKBACK_S
    times, flagged = welfare.store.work_times("p", since)
    return welfare._due(times, flagged, NOW, REST)[0] is None


@pytest.mark.parametrize(("after_flagged", "continuous_min"), [(3, 120), (1, 0), (0, 60), (2, 90)])
def test_the_claims_gate_agrees_with_the_break_rules(
    repo: Any, tmp_path: Path, after_flagged: int, continuous_min: int
) -> None:
    settings = ServerSettings(
        db_path=tmp_path / "unused.db",
        data_dir=tmp_path / "data",
        break_after_flagged=after_flagged,
        break_minutes=int(REST // 60),
        max_continuous_minutes=continuous_min,
    )
    welfare = WelfareService(settings, FakeClock(), repo, set())
    draw = random.Random(after_flagged * 1000 + continuous_min)
    seen = {True: 0, False: 0}
    limit = continuous_min * 60.0
    for history in [*_edges(limit), *(_history(draw, limit) for _ in range(60))]:
        _store(repo, *history)
        gate = welfare.claim_gate("p", NOW)
        assert gate is not None
        with repo._read() as conn:
            (clear,) = repo._one(conn, f"SELECT {gate.sql}", gate.params)
        expected = _rules_let_through(welfare)
        assert bool(clear) == expected
        seen[expected] += 1
    assert seen[True] and seen[False]  # both answers were exercised


def test_no_gate_when_breaks_are_off(tmp_path: Path, repo: Any) -> None:
    settings = ServerSettings(db_path=tmp_path / "u.db", data_dir=tmp_path / "d", break_minutes=0)
    assert WelfareService(settings, FakeClock(), repo, set()).claim_gate("p", NOW) is None


def _gate_steps(repo: Any, welfare: WelfareService) -> int:
    """SQLite virtual-machine steps (in thousands) the gate's statement takes: a count of the
    work done, the same on any machine."""
    gate = welfare.claim_gate("p", NOW)
    assert gate is not None
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with repo._read() as conn:
        conn.set_progress_handler(count, 1000)
        try:
            repo._one(conn, f"SELECT {gate.sql}", gate.params)
        finally:
            conn.set_progress_handler(None, 1000)
    return steps


def test_the_gate_does_not_grow_with_the_shift(tmp_path: Path) -> None:
    """Every lease request runs the gate, so its cost must not grow with the person's work
    since the break: 100 submissions or 5,000 (a long shift, packed into the continuous limit
    so that rule's short cut applies), with a few escalated clips, cost about the same."""
    r = open_repo(f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "data")
    try:
        settings = ServerSettings(
            db_path=tmp_path / "unused.db",
            data_dir=tmp_path / "data",
            break_after_flagged=3,
            break_minutes=int(REST // 60),
            max_continuous_minutes=120,
        )
        welfare = WelfareService(settings, FakeClock(), r, set())
        steps = []
        for n in (100, 5000):
            times = [NOW - 3600 + k * 3600 / n for k in range(n)]
            _store(r, times, [(times[k] - 60, k) for k in (3, 50)], [])
            steps.append(_gate_steps(r, welfare))
        assert steps[1] <= 2 * steps[0] + 2, steps
    finally:
        r.close()
