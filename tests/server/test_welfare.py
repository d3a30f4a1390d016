"""Welfare on the server (issue 11), on both backends with the injectable clock: mandatory
breaks (lease refused with 429 on_break + Retry-After, submissions still taken), exposure
counts per person and shift, and opt-outs honoured by the claim when K > 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from api.client import OnBreak, QueueClient, new_idempotency_key
from api.models import AnnotationIn, Lease, Role
from tests.fixtures.server import ClockedServer


def submit(client: QueueClient, lease: Lease, flags: tuple[str, ...] = ()) -> None:
    client.submit(
        AnnotationIn(
            lease_id=lease.lease_id,
            fence=lease.fence,
            transcript="hello there",
            intent="weather_query",
            flags=list(flags),
            note="needs a look" if flags else None,
        ),
        new_idempotency_key(),
    )


def one(client: QueueClient) -> Lease:
    leases = client.lease(1).leases
    assert len(leases) == 1
    return leases[0]


def test_break_after_three_escalation_flagged_clips_refuses_leases_until_it_ends(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(break_after_flagged=3, break_minutes=15)
    server.ingest(test_wavs(6))
    token = server.token("alice")
    alice = QueueClient(server.url, token)
    for i in range(3):
        assert alice.welfare().flagged_since_break == i
        submit(alice, one(alice), ("distress",))
        server.clock.advance(20)
    held = alice.welfare()
    assert held.on_break and held.break_reason == "flagged"
    assert held.policy.break_after_flagged == 3
    with server.client(token) as raw:
        resp = raw.post("/v1/leases", json={"count": 1})
    assert resp.status_code == 429
    assert resp.json()["reason"] == "on_break"
    assert 0 < int(resp.headers["Retry-After"]) <= 15 * 60
    with pytest.raises(OnBreak) as refused:
        alice.lease(1)
    assert 0 < refused.value.retry_after_s <= 15 * 60
    assert "15-minute break" in refused.value.error.message
    # Someone else works on.
    bob = QueueClient(server.url, server.token("bob"))
    assert bob.lease(1).leases
    server.clock.advance(15 * 60)
    after = alice.welfare()
    assert not after.on_break and after.flagged_since_break == 0
    assert one(alice)


def test_two_hours_of_continuous_work_mean_a_break_and_a_pause_counts_as_one(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(max_continuous_minutes=120, break_minutes=15)
    server.ingest(test_wavs(30))
    alice = QueueClient(server.url, server.token("alice"))
    # 110 minutes of work, then a 20-minute pause (longer than a break: it counts as one)...
    for _ in range(11):
        submit(alice, one(alice))
        server.clock.advance(10 * 60)
    assert alice.welfare().working_since is not None
    server.clock.advance(10 * 60)
    assert alice.welfare().working_since is None
    # ...then a new run of work: at 120 minutes the break is due.
    for _ in range(12):
        submit(alice, one(alice))
        server.clock.advance(10 * 60)
    state = alice.welfare()
    assert state.on_break and state.break_reason == "continuous"
    with pytest.raises(OnBreak) as refused:
        alice.lease(1)
    assert refused.value.retry_after_s == 15 * 60


def test_exposure_counts_clips_anyone_flagged_per_person(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(annotations_per_clip=2, break_after_flagged=0)
    server.ingest(test_wavs(3))
    alice = QueueClient(server.url, server.token("alice"))
    bob = QueueClient(server.url, server.token("bob"))
    first = one(alice)
    submit(alice, first, ("minor", "explicit"))
    submit(alice, one(alice), ("distress",))
    submit(alice, one(alice))
    # Bob hears the same three: the first two carry alice's flags, which count for him too.
    for _ in range(3):
        submit(bob, one(bob))
    supervisor = QueueClient(server.url, server.token("sue", Role.SUPERVISOR))
    report = {p.person: p for p in supervisor.exposure().people}
    expected = {"distress": 1, "self_harm": 0, "explicit": 1, "minor": 1}
    assert report["alice"].counts == expected
    assert report["bob"].counts == expected
    with pytest.raises(Exception) as refused:
        alice.exposure()
    assert getattr(refused.value, "status_code", None) == 403


def test_opt_out_keeps_clips_flagged_by_an_earlier_annotator_away(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(annotations_per_clip=2, break_after_flagged=0)
    server.ingest(test_wavs(3))
    alice = QueueClient(server.url, server.token("alice"))
    bob = QueueClient(server.url, server.token("bob"))
    flagged = one(alice)
    submit(alice, flagged, ("minor",))
    plain = one(alice)
    submit(alice, plain)
    assert bob.set_opt_outs(["minor"]).opt_outs == ["minor"]
    served = [lease.clip.clip_id for lease in bob.lease(3).leases]
    assert flagged.clip.clip_id not in served
    assert plain.clip.clip_id in served and len(served) == 2
    # A supervisor sets it for someone, and an unknown category is refused by name.
    supervisor = QueueClient(server.url, server.token("sue", Role.SUPERVISOR))
    server.token("carol")
    assert supervisor.set_opt_outs(["explicit", "minor"], person="carol").opt_outs == [
        "explicit",
        "minor",
    ]
    with server.client(server.token("dave")) as raw:
        resp = raw.put("/v1/me/opt-outs", json={"categories": ["gore"]})
    assert resp.status_code == 422 and "gore" in resp.json()["message"]
    with server.client(server.token("erin")) as raw:
        resp = raw.put("/v1/admin/people/carol/opt-outs", json={"categories": []})
    assert resp.status_code == 403


def test_serve_flags_set_the_policy(make_live_server: Callable[..., object]) -> None:
    server = make_live_server("--break-after-flagged", "5", "--break-minutes", "20")
    with httpx.Client(
        base_url=server.url,  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {server.annotator_token}"},  # type: ignore[attr-defined]
    ) as c:
        policy = c.get("/v1/me/welfare").json()["policy"]
    assert policy == {"break_after_flagged": 5, "break_minutes": 20, "max_continuous_minutes": 120}


def test_with_breaks_off_nothing_is_refused(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(break_minutes=0)
    server.ingest(test_wavs(5))
    alice = QueueClient(server.url, server.token("alice"))
    for _ in range(4):
        submit(alice, one(alice), ("self_harm",))
        server.clock.advance(60 * 60)
    assert not alice.welfare().on_break
    assert one(alice)
