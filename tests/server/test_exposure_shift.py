"""Exposure per shift (issue 11): without `since`, each person's own shift — their first activity
after a pause of at least `shift_gap_hours` — not the calendar day. Both backends, FakeClock
(which starts at 09:00 UTC), real server over loopback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from api.client import QueueClient
from api.models import Role
from api.server.commands import UsageError, _settings
from tests.fixtures.server import ClockedServer
from tests.server.test_welfare import one, submit

NONE = {"distress": 0, "self_harm": 0, "explicit": 0, "minor": 0}


def _night_shift(server: ClockedServer, test_wavs: Callable[..., list[Path]]) -> QueueClient:
    """alice works at 09:00, then a night shift from 22:00 past midnight; bob only at 09:00."""
    server.ingest(test_wavs(4))
    alice = QueueClient(server.url, server.token("alice"))
    bob = QueueClient(server.url, server.token("bob"))
    submit(alice, one(alice), ("distress",))
    submit(bob, one(bob), ("self_harm",))
    server.clock.advance(13 * 3600)  # 22:00
    submit(alice, one(alice), ("explicit",))
    server.clock.advance(2.5 * 3600)  # 00:30 the next day
    submit(alice, one(alice), ("minor",))
    server.clock.advance(600)
    return QueueClient(server.url, server.token("sue", Role.SUPERVISOR))


def test_a_shift_is_the_work_since_the_last_long_pause_across_midnight(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(break_after_flagged=0)  # default: a 4 h pause ends a shift
    start = server.clock.now()
    sue = _night_shift(server, test_wavs)
    report = sue.exposure()
    assert report.shift_gap_hours == 4.0
    people = {p.person: p for p in report.people}
    alice, bob = people["alice"], people["bob"]
    # Since midnight would have counted the minor clip only; the shift began at 22:00.
    assert alice.shift_started_at == start + timedelta(hours=13) and alice.on_shift
    assert alice.counts == {**NONE, "explicit": 1, "minor": 1}
    # bob's latest shift was the morning's: over (no work for 15 h), still reported.
    assert bob.shift_started_at == start and not bob.on_shift
    assert bob.counts == {**NONE, "self_harm": 1}
    assert report.since == start and report.until == server.clock.now()

    # An explicit `since` is a plain window, for everyone.
    window = sue.exposure(since=start + timedelta(hours=15))
    assert window.shift_gap_hours is None
    assert {p.person: p.counts for p in window.people}["alice"] == {**NONE, "minor": 1}


def test_the_pause_that_ends_a_shift_is_the_deployments(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(break_after_flagged=0, shift_gap_hours=2)
    start = server.clock.now()
    sue = _night_shift(server, test_wavs)
    alice = {p.person: p for p in sue.exposure().people}["alice"]
    # 22:00 → 00:30 is a 2.5 h pause: with 2 h, the shift began at 00:30.
    assert alice.shift_started_at == start + timedelta(hours=15.5)
    assert alice.counts == {**NONE, "minor": 1}


def test_serve_takes_the_shift_gap(tmp_path: Path) -> None:
    from annotator.cli import build_parser

    def parse(*args: str) -> float:
        parsed = build_parser().parse_args(["serve", "--db", str(tmp_path / "q.db"), *args])
        return _settings(parsed).shift_gap_hours

    assert parse() == 4.0
    assert parse("--shift-gap-hours", "8") == 8.0
    with pytest.raises(UsageError, match="--shift-gap-hours"):
        parse("--shift-gap-hours", "0")
