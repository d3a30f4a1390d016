"""The console's widgets and keys, from fixed escalations (tests/supervise/fakes.py): every action
keyboard-only, in the help and the palette; the list keeps its selection as rows arrive; a new
escalation rings the bell; the clip's audio is fetched only when a player key asks for it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annotator.actions import SUPERVISE, actions_for
from annotator.screens.commands import ActionCommands
from annotator.screens.help import HelpScreen, key_rows
from annotator.supervise.screens.escalations import EscalationsScreen
from annotator.supervise.screens.queue import QueueScreen
from annotator.supervise.screens.resolve import ResolveScreen
from api.models import EscalationState
from tests.supervise.fakes import make_console, summary
from tests.tui.helpers import type_text


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    for name in ("ANNOTATOR_SERVER", "ANNOTATOR_TOKEN", "ANNOTATOR_AUDIO", "ANNOTATOR_KEYMAP"):
        monkeypatch.delenv(name, raising=False)


def console(pilot: Pilot[Any]) -> EscalationsScreen:
    screen = pilot.app.escalations  # type: ignore[attr-defined]
    assert isinstance(screen, EscalationsScreen)
    return screen


async def until(pilot: Pilot[Any], predicate: Any, what: str, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def loaded(pilot: Pilot[Any]) -> EscalationsScreen:
    screen = console(pilot)
    await until(pilot, lambda: screen.board.page is not None, "the first page")
    await pilot.pause()
    return screen


async def test_the_list_puts_overdue_then_the_most_severe_first(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        keys = [r.escalation_id for r in screen.board.rows()]
        # esc0002 is 22 min old and unacknowledged (15 min target): overdue sorts first.
        assert keys == ["esc0002", "esc0001", "esc0003"]
        assert screen.table.row_count == 3
        assert screen.table.selected == "esc0002"
        status = str(screen.query_one("#status").render())
        assert "2 open" in status and "1 acknowledged" in status and "● live" in status
        row = [str(c) for c in screen.table.get_row("esc0002")]
        assert row[0] == "!" and "ack overdue 7m" in row[3]


async def test_acknowledge_resolve_with_a_note_reopen(tmp_path: Path) -> None:
    app, fake = make_console(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("a")
        await until(pilot, lambda: fake.calls == [("ack", "esc0002")], "the ack")
        await until(
            pilot,
            lambda: screen.board.find("esc0002").state is EscalationState.ACKNOWLEDGED,  # type: ignore[union-attr]
            "the list to show it acknowledged",
        )
        await pilot.press("a")  # acknowledged already: said, not sent
        await pilot.pause(0.2)
        assert fake.calls == [("ack", "esc0002")]

        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ResolveScreen), "the resolve dialog")
        await pilot.press("2")  # referred_per_policy, and on to the note
        await pilot.press("enter")  # a blank note is refused in place
        await pilot.pause()
        assert isinstance(app.screen, ResolveScreen)
        assert "needs a note" in str(app.screen.query_one("#resolve-error").render())
        await type_text(pilot, "called the on-call lead")
        await pilot.press("enter")
        await until(pilot, lambda: len(fake.calls) == 2, "the resolve")
        assert fake.calls[1] == ("resolve", "esc0002")
        resolved = fake.rows["esc0002"]
        assert resolved.outcome == "referred_per_policy"
        assert resolved.resolution_note == "called the on-call lead"

        # Resolved leaves the active list; the filter key shows it again.
        await until(pilot, lambda: "esc0002" not in screen.table._keys, "it to leave the list")
        for _ in range(3):  # active → open → acknowledged → resolved
            await pilot.press("f")
        assert screen.board.filter.label == "resolved"
        await until(pilot, lambda: screen.table._keys == ["esc0002"], "the resolved list")
        await pilot.press("o")
        await until(pilot, lambda: len(fake.calls) == 3, "the reopen")
        assert fake.calls[2] == ("reopen", "esc0002")
        assert [e.action.value for e in fake.audit["esc0002"]] == ["ack", "resolve", "reopen"]


async def test_escape_cancels_the_resolve_dialog(tmp_path: Path) -> None:
    app, fake = make_console(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ResolveScreen), "the resolve dialog")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EscalationsScreen)
        assert fake.calls == []


async def test_a_new_escalation_rings_and_keeps_the_selection(tmp_path: Path) -> None:
    app, fake = make_console(tmp_path)
    bells: list[int] = []
    async with app.run_test(size=(100, 32)) as pilot:
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        screen = await loaded(pilot)
        await pilot.press("down")  # on esc0001
        await until(pilot, lambda: screen.table.selected == "esc0001", "the selection")
        assert bells == []  # what was waiting at the start does not ring
        fake.add(summary(9, flags=("self_harm",), minutes_ago=0, annotator="ann4"))
        await until(pilot, lambda: "esc0009" in screen.table._keys, "the new row", timeout=2)
        assert bells == [1]
        assert screen.table.selected == "esc0001"  # the new row did not move the reader
        notes = [n.message for n in app._notifications]
        assert any("self-harm" in m and "ann4" in m for m in notes)


async def test_audio_is_fetched_only_when_a_player_key_asks(tmp_path: Path) -> None:
    app, fake = make_console(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down", "up")
        await pilot.pause(0.3)
        assert fake.calls == []  # browsing writes no `play` event
        await pilot.press("f5")
        await until(pilot, lambda: screen._audio_for == "esc0002", "the clip")
        assert fake.calls == [("play", "esc0002")]
        player = screen.services.player
        assert player.playing
        await pilot.press("f5")  # pause: no second fetch
        assert not player.playing
        await pilot.press("alt+up")
        assert player.speed == pytest.approx(1.0 + screen.services.settings.speed_step)
        await pilot.press("f4")
        assert player.playing and player.position == 0.0
        assert fake.calls == [("play", "esc0002")]
        await pilot.press("down")  # another escalation: the sound stops
        await pilot.pause()
        assert not player.playing and screen._audio_for is None


async def test_every_console_key_is_in_the_help_and_the_palette(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await loaded(pilot)
        provider = ActionCommands(app.screen)
        hits = [hit async for hit in provider.discover()]
        mine = actions_for(SUPERVISE)
        helps = " ".join(str(hit.help) for hit in hits)
        assert len(hits) == len(mine) and all(a.id in helps for a in mine)
        assert "form.submit" not in helps and "flag.distress" not in helps
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = [*key_rows(app.services.keymap, SUPERVISE), *app.screen._extra]
        assert [d for _, _, d in rows][: len(mine)] == [a.description for a in mine]
        assert all(keys != "—" for _, keys, _ in rows)
        assert ("Escalations", "up, down", "Select the previous / next escalation") in rows
        await pilot.press("escape")


async def test_the_queue_view_and_back(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue view")
        status = app.screen.query_one("#queue-status")
        await until(pilot, lambda: "412 pending" in str(status.render()), "the queue status")
        sparklines = app.screen.query("Sparkline")
        assert len(sparklines) == 2
        assert "not available" in str(app.screen.query_one("#exposure").render())
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, EscalationsScreen)


async def test_the_detail_shows_amend_history_and_the_audit_trail_escaped(tmp_path: Path) -> None:
    from api.models import AmendmentRecord, AuditAction, AuditEvent, EscalationDetail
    from tests.supervise.fakes import NOW

    app, fake = make_console(tmp_path)
    row = fake.rows["esc0002"]
    detail = EscalationDetail(
        escalation=row.model_copy(update={"note": "evil \x1b[31m note"}),
        amendments=[
            AmendmentRecord(amended_at=NOW, transcript="help", intent="no_speech", flags=[])
        ],
        audit=[
            AuditEvent(event_id="e1", escalation_id="esc0002", action=AuditAction.PLAY,
                       actor="sup\u202e1", at=NOW, from_state=EscalationState.OPEN,
                       to_state=EscalationState.OPEN),
        ],
    )  # fmt: skip
    async with app.run_test(size=(120, 48)) as pilot:
        screen = await loaded(pilot)
        screen.detail_view.show(detail, NOW)
        await pilot.pause()
        body = screen.detail_view.plain_text()
        assert "Amend history (1 earlier versions)" in body and "“help”" in body
        assert "play" in body and "open → open" in body
        assert "\x1b" not in body and "\u202e" not in body  # drawn as visible escapes


async def test_the_queue_view_shows_exposure_where_the_server_counts_it(tmp_path: Path) -> None:
    from types import SimpleNamespace

    app, fake = make_console(tmp_path)
    person = SimpleNamespace(
        person="ann\x1b1", counts={"distress": 3, "self_harm": 1}, breaks=1, on_break=True,
        opt_outs=["minor"], shift_started_at=datetime(2026, 12, 1, 22, 5, tzinfo=UTC),
    )  # fmt: skip
    other = SimpleNamespace(person="bo", counts={}, breaks=0, on_break=False, on_shift=True)
    report = SimpleNamespace(
        categories=["distress", "self_harm", "explicit"], people=[person, other]
    )
    fake.exposure = lambda: report  # type: ignore[attr-defined]  # the welfare routes' method
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue view")
        exposure = app.screen.query_one("#exposure")
        await until(pilot, lambda: "not available" not in _plain(exposure), "the exposure table")
        text = _plain(exposure)
        assert "self harm" in text and "on a break" in text and "minor" in text
        assert "ann\\x1b1" in text and "\x1b" not in text  # the name escaped
        row = next(line for line in text.splitlines() if "ann" in line).split()
        assert row[1:5] == ["3", "1", "0", "1"]  # distress, self harm, explicit, breaks
        assert "01 Dec 22:05 UTC" in text  # when ann's shift began (the server's shift)
        assert "on shift" in next(line for line in text.splitlines() if "bo " in line)


def _plain(widget: Any) -> str:
    import io

    from rich.console import Console

    console = Console(width=160, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(widget.content)
    return captured.get()
