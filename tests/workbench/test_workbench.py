"""The sitting without a terminal: the workbench over the real services and a real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.store.models import LeaseOrigin
from annotator.workbench.outcomes import Invalid, Refused, Reopened, Shown, Skipped, Submitted
from annotator.workbench.sitting import session_alive, this_session
from api.models import ReleaseReason
from tests.fixtures.server import LiveServer
from tests.tui.helpers import export
from tests.workbench.support import form, next_clip, services_for, submit, wait_for


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


@pytest.fixture
def server(live_server: LiveServer, test_wavs: Callable[..., list[Path]]) -> LiveServer:
    live_server.ingest(test_wavs(10))
    return live_server


def test_every_lease_is_recorded_when_leased(server: LiveServer) -> None:
    services = services_for(server)
    services.start()
    try:
        wait_for(lambda: services.prefetcher.status.ready >= 3)
        records = services.store.lease_records()
        assert len(records) >= 3
        assert {r.origin for r in records} == {LeaseOrigin.PREFETCH}
        assert {r.session for r in records} == {services.workbench.session_id}
    finally:
        services.shutdown()


def test_submit_skip_undo_amend(server: LiveServer) -> None:
    services = services_for(server)
    services.start()
    bench = services.workbench
    try:
        first = next_clip(services)
        bad = bench.submit(form("hello", intent=None))  # type: ignore[arg-type]
        assert isinstance(bad, Invalid) and bad.problems[0][0] == "intent"
        done = submit(services, "hello there")
        assert done.clip_id == first.clip.lease.clip.clip_id and not done.escalated
        second = next_clip(services)
        assert isinstance(bench.skip(ReleaseReason.SKIPPED), Skipped)
        assert services.store.live_leases() and all(
            le.lease_id != second.clip.lease_id for le in services.store.live_leases()
        )
        third = next_clip(services)
        reopened = bench.undo()
        assert isinstance(reopened, Reopened)
        assert reopened.item.clip_id == done.clip_id and reopened.clip is not None
        assert isinstance(bench.undo(), Refused)  # already amending
        assert bench.next() is None  # the bench is taken while amending
        amended = bench.submit(form("hello again"))
        assert not isinstance(amended, Invalid | Refused)
        back = bench.end_amendment()
        assert isinstance(back, Shown) and back.clip.lease_id == third.clip.lease_id
        wait_for(lambda: services.store.outbox_count() == 0, timeout=15)
    finally:
        services.shutdown()
    rows = export(server)
    assert [(r["clip_id"], r["transcript"]) for r in rows] == [(done.clip_id, "hello again")]


def test_quit_releases_prefetched_leases_without_drafts_and_keeps_the_rest(
    server: LiveServer,
) -> None:
    services = services_for(server)
    services.start()
    bench = services.workbench
    try:
        next_clip(services)
        bench.save_draft(form("half typed"))
        wait_for(lambda: services.prefetcher.status.ready >= 3)
        result = bench.checkout(2)
        assert len(result.leases) == 2 and result.error is None
    finally:
        summary = services.shutdown()
    assert summary is not None
    # 3 prefetched without a draft given back; the drafted one and the 2 checked out kept.
    assert summary.released == 3 and len(summary.kept_drafts) == 1
    assert summary.kept_checkout == 2 and not summary.unreleased
    assert summary.text().startswith("kept 1 clip with a draft until ")
    assert "kept 2 checked-out clips" in summary.text() and "released 3" in summary.text()
    with server.client(server.annotator_token) as c:
        free = c.post("/v1/leases", json={"count": 10}).json()["leases"]
    assert len(free) == 10 - 1 - 2  # everything else is back in the queue at once


def test_a_killed_sessions_prefetched_leases_are_adopted(server: LiveServer) -> None:
    services = services_for(server)
    services.start()
    try:
        wait_for(lambda: services.prefetcher.status.ready >= 3)
        held = {r.lease_id for r in services.store.lease_records()}
        # As if its terminal died: nothing released, and the process that held them is gone.
        dead = services.workbench.session_id.rsplit(":", 2)[0] + ":999999999:1"
        services.store.claim_leases(held, dead)
        services.prefetcher.close(release_unused=False)
    finally:
        services.store.close()
        services.player.close()
        assert services.profile_lock is not None
        services.profile_lock.release()  # as the kernel does for a killed process
    assert not session_alive(dead)
    assert session_alive(this_session())

    again = services_for(server)
    again.start()
    try:
        shown = {next_clip(again).clip.lease_id}
        for _ in range(2):
            submit(again, "hi")
            shown.add(next_clip(again).clip.lease_id)
        assert shown <= held  # the dead session's clips come first, nobody waits for them
    finally:
        again.shutdown()


def test_the_escalation_notice_follows_the_report(server: LiveServer) -> None:
    services = services_for(server)
    services.start()
    bench = services.workbench
    try:
        next_clip(services)
        server._kill()
        wait_for(lambda: not bench.connectivity.state.online, timeout=4)
        outcome = bench.submit(
            form("help me", flags=("self_harm", "pii"), note="says they will hurt themselves")
        )
        assert isinstance(outcome, Submitted) and outcome.escalated == ("self_harm",)
        queued = bench.escalation(outcome.clip_id)
        assert queued.delivered_at is None and queued.waiting == 1
        assert "You flagged self harm." in queued.text()
        assert "Queued — reaches supervisors when you are back online (1 waiting)." in queued.text()
        server.start()
        wait_for(lambda: bench.escalation(outcome.clip_id).delivered_at is not None, timeout=10)
        delivered = bench.escalation(outcome.clip_id)
        assert delivered.delivered_at is not None
        assert f"Delivered to supervisors at {delivered.delivered_at:%H:%M}." in delivered.text()
    finally:
        services.shutdown()
    (row,) = export(server)
    assert row["flags"] == ["pii", "self_harm"]
