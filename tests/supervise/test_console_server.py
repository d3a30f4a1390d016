"""The console's own code paths against the real server (in-process on a loopback socket, with a
FakeClock): launching with each role, the clip's audio as a `play` audit event (and gone once
resolved), overdue marking when the server's clock passes the target, the queue view's figures."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.services import LaunchError
from annotator.supervise.app import SuperviseApp
from annotator.supervise.screens.queue import QueueScreen
from annotator.supervise.services import ConsoleServices, build_console
from api.client import QueueClient
from api.models import AnnotationPatch, AuditAction, ReleaseReason, Role
from tests.fixtures.server import ClockedServer, LiveServer, run_annotator
from tests.server.helpers import annotation, key
from tests.supervise.test_console_keys import console, loaded, until
from tests.tui.fakes import FrozenPlayer


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    for name in ("ANNOTATOR_AUDIO", "ANNOTATOR_KEYMAP", "ANNOTATOR_RELAY"):
        monkeypatch.delenv(name, raising=False)


def args() -> argparse.Namespace:
    return argparse.Namespace(server=None, token=None, config=None, audio="none", keymap=None)


def services_for(
    server: ClockedServer, token: str, monkeypatch: pytest.MonkeyPatch
) -> ConsoleServices:
    monkeypatch.setenv("ANNOTATOR_SERVER", server.url)
    monkeypatch.setenv("ANNOTATOR_TOKEN", token)
    services = build_console(args())
    services.player = FrozenPlayer()  # type: ignore[assignment]
    services.poll_wait_s = 1.0
    return services


def flag(server: ClockedServer, who: str, flags: list[str]) -> str:
    with QueueClient(server.url, server.token(who)) as c:
        lease = c.lease().leases[0]
        return c.submit(annotation(lease, flags=flags, note="someone crying"), key()).annotation_id


def test_an_annotators_token_is_sent_to_the_right_command(
    clocked_server: ClockedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANNOTATOR_SERVER", clocked_server.url)
    monkeypatch.setenv("ANNOTATOR_TOKEN", clocked_server.token("alice"))
    with pytest.raises(LaunchError, match="needs a supervisor's or an admin's token"):
        build_console(args())
    done = run_annotator(
        "supervise",
        home=tmp_path / "cli",
        env={"ANNOTATOR_SERVER": clocked_server.url, "ANNOTATOR_TOKEN": "not-a-token"},
    )
    assert done.returncode == 2
    assert "refused the token" in done.stderr and "Traceback" not in done.stderr


async def test_audio_is_a_play_event_and_gone_once_resolved(
    clocked_server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clocked_server.ingest(test_wavs(1))
    flag(clocked_server, "alice", ["distress"])
    supervisor = clocked_server.token("sue", "supervisor")
    app = SuperviseApp(services_for(clocked_server, supervisor, monkeypatch))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        [eid] = screen.table._keys
        await pilot.press("f5")
        await until(pilot, lambda: screen._audio_for == eid, "the clip's audio")
        assert app.services.player.playing
        # The bar read "0:02.9 / 0:00.0" once the clip arrived (and drew no playhead).
        assert screen.player_bar.duration == pytest.approx(0.5, abs=0.05)
        # The pane's audit trail said "no events yet" until the next ack or resolve.
        await until(
            pilot,
            lambda: [e.action for e in screen._details[eid].audit] == [AuditAction.PLAY],
            "the play event in the detail pane",
        )
        with QueueClient(clocked_server.url, supervisor) as sup:
            assert [e.action for e in sup.escalation(eid).audit] == [AuditAction.PLAY]
            sup.resolve(eid, "false_alarm", "a film in the background")
        await until(pilot, lambda: eid not in screen.table._keys, "the resolved row to leave")
        for _ in range(3):
            await pilot.press("f")
        await until(pilot, lambda: screen.table._keys == [eid], "the resolved filter")
        await pilot.press("f5")  # a resolved escalation's audio is gone: said, not fetched
        await pilot.pause()
        assert "gone" in screen.player_bar.status
        with QueueClient(clocked_server.url, supervisor) as sup:
            actions = [e.action for e in sup.escalation(eid).audit]
        assert actions == [AuditAction.PLAY, AuditAction.RESOLVE]


async def test_overdue_when_the_servers_clock_passes_the_target(
    clocked_server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clocked_server.ingest(test_wavs(2))
    flag(clocked_server, "alice", ["distress"])
    app = SuperviseApp(services_for(clocked_server, clocked_server.token("sue", "supervisor"),
                                    monkeypatch))  # fmt: skip
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        [eid] = screen.table._keys
        assert str(screen.table.get_row(eid)[0]) != "!"
        assert str(screen.table.get_row(eid)[3]) in {"ack in 15m", "ack in 14m"}
        # Ten minutes on this machine with no news: the list's countdown moved, and the detail
        # pane's too (it kept "raised … (0s ago)", "ack due … (in 14m)" until the next page).
        await until(pilot, lambda: "ago)" in screen.detail_view.plain_text(), "the detail")
        local = screen.board.clock
        screen.board.clock = lambda: local() + 10 * 60
        await until(pilot, lambda: "(10m ago)" in screen.detail_view.plain_text(), "10m ago")
        assert "(in 5m)" in screen.detail_view.plain_text() or "(in 4m)" in (
            screen.detail_view.plain_text()
        )
        screen.board.clock = local
        clocked_server.clock.advance(16 * 60)
        flag(clocked_server, "bob", ["self_harm"])  # news: a page with the server's new time
        await until(pilot, lambda: len(screen.table._keys) == 2, "the second escalation")
        # Overdue sorts first, ahead of the more severe self-harm that is still in time.
        assert screen.table._keys[0] == eid
        row = [str(c) for c in screen.table.get_row(eid)]
        assert row[0] == "!" and row[3] == "ack overdue 1m"


async def test_the_queue_view_for_admins_and_supervisors(
    clocked_server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clocked_server.ingest(test_wavs(3))
    flag(clocked_server, "alice", ["distress"])
    app = SuperviseApp(services_for(clocked_server, clocked_server.token("ada", "admin"),
                                    monkeypatch))  # fmt: skip
    assert app.services.role is Role.ADMIN
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue view")
        status = app.screen.query_one("#queue-status")
        await until(pilot, lambda: "pending" in str(status.render()), "the queue status")
        text = str(status.render())
        assert "2 pending" in text and "1 done" in text and "1 escalations not resolved" in text
        assert "alice" in str(app.screen.query_one("#throughput").query("Label")[1].render())
    supervisor = SuperviseApp(
        services_for(clocked_server, clocked_server.token("sue", "supervisor"), monkeypatch)
    )
    async with supervisor.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("v")
        assert supervisor.services.role is Role.SUPERVISOR
        status = supervisor.screen.query_one("#queue-status")
        assert "the queue's figures are for admins" in str(status.render())
        assert not supervisor.screen.query_one("#admin-part").display  # the supervisor's view
        assert console(pilot).board.page is not None


async def test_an_amendment_and_a_cannot_judge_skip_reach_the_console(
    clocked_server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clocked_server.ingest(test_wavs(2))
    alice = QueueClient(clocked_server.url, clocked_server.token("alice"))
    lease = alice.lease().leases[0]
    aid = alice.submit(annotation(lease, flags=["distress"], note="crying"), key()).annotation_id
    app = SuperviseApp(services_for(clocked_server, clocked_server.token("sue", "supervisor"),
                                    monkeypatch))  # fmt: skip
    async with app.run_test(size=(120, 48)) as pilot:
        screen = await loaded(pilot)
        [eid] = screen.table._keys
        await until(pilot, lambda: eid in screen._details, "the detail")
        alice.amend(aid, AnnotationPatch(transcript="please help me", note="crying, then a thud"))
        await until(
            pilot,
            lambda: screen._details[eid].escalation.transcript == "please help me",
            "the amendment on the console",
            5,
        )
        body = screen.detail_view.plain_text()
        assert "please help me" in body and "crying, then a thud" in body
        # A skip for a supervisor's view joins the same list, least severe.
        skipped = alice.lease().leases[0]
        alice.release(skipped.lease_id, ReleaseReason.CANNOT_JUDGE, "two voices, can't tell")
        await until(pilot, lambda: len(screen.table._keys) == 2, "the cannot-judge row")
        row = [str(c) for c in screen.table.get_row(screen.table._keys[1])]
        assert row[1] == "cannot judge" and row[5] == "alice"
        await pilot.press("down")
        detail = screen.detail_view
        await until(pilot, lambda: "skipped: cannot judge" in detail.plain_text(), "its detail")
    alice.close()


async def test_the_console_says_when_the_server_is_gone_and_recovers(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_server.ingest(test_wavs(2))
    monkeypatch.setenv("ANNOTATOR_SERVER", live_server.url)
    monkeypatch.setenv("ANNOTATOR_TOKEN", live_server.supervisor_token)
    services = build_console(args())
    services.poll_wait_s = 1.0
    app = SuperviseApp(services)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        live_server.stop()
        banner = screen.query_one("#banner")
        await until(pilot, lambda: banner.has_class("-shown"), "the offline banner", 10)
        assert "unreachable" in str(banner.render())
        assert "offline" in str(screen.query_one("#status").render())
        live_server.start()
        with QueueClient(live_server.url, live_server.annotator_token) as c:
            lease = c.lease().leases[0]
            c.submit(annotation(lease, flags=["self_harm"], note="quietly"), key())
        await until(pilot, lambda: len(screen.table._keys) == 1, "the escalation after it", 15)
        assert not banner.has_class("-shown")
        assert "● live" in str(screen.query_one("#status").render())
