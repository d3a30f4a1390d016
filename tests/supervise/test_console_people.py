"""The console against the real server (in-process, loopback, FakeClock): the admins' people view
and revoking a token from it behind a confirming dialog, keyboard only, no secret on screen; and
an escalation that becomes overdue with no commit at all re-sorted on every console."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from annotator.supervise.app import SuperviseApp
from annotator.supervise.screens.people import ConfirmRevoke, PeopleScreen
from api.models import Role
from tests.fixtures.server import ClockedServer
from tests.supervise.test_console_keys import loaded, until
from tests.supervise.test_console_server import _home, flag, services_for

__all__ = ["_home"]  # the autouse ANNOTATOR_HOME fixture, shared


def _status(server: ClockedServer, token: str) -> int:
    r = httpx.get(f"{server.url}/v1/me/stats", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def _cells(screen: PeopleScreen) -> str:
    table = screen.table
    return " ".join(str(c) for r in range(table.row_count) for c in table.get_row_at(r)) + str(
        screen.query_one("#people-status").render()
    )


async def test_an_admin_revokes_a_token_from_the_people_view(
    clocked_server: ClockedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = clocked_server
    alice = s.token("alice")
    bobs = [s.token("bob"), s.token("bob")]  # one person, two tokens
    admin = s.token("root", Role.ADMIN)
    app = SuperviseApp(services_for(s, admin, monkeypatch))
    async with app.run_test(size=(160, 32)) as pilot:
        await loaded(pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PeopleScreen), "the people view")
        people = app.screen
        assert isinstance(people, PeopleScreen)
        await until(pilot, lambda: people.table.row_count == 4, "everyone's tokens")
        shown = _cells(people)
        assert "alice" in shown and "bob" in shown and "root" in shown and "live" in shown
        for secret in (alice, *bobs, admin):
            assert secret not in shown and secret[:12] not in shown
        # alice's row (names in order: alice, bob, bob, root) is selected first.
        assert people.rows[people.selected or ""].person.name == "alice"

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRevoke), "the confirmation")
        await pilot.press("n")  # cancelled: nothing happens
        await until(pilot, lambda: app.screen is people, "the dialog to close")
        assert _status(s, alice) == 200

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRevoke), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "revoked" in _cells(people), "the revoked state", 10)
        # Refused within a second (the server's token cache re-reads the generation that often).
        await until(pilot, lambda: _status(s, alice) == 401, "the token refused", 1.0)
        assert _status(s, admin) == 200

        await pilot.press("down")  # bob's first token; `a` in the dialog: all of bob's
        assert people.rows[people.selected or ""].person.name == "bob"
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRevoke), "the confirmation")
        await pilot.press("a")
        await until(
            pilot, lambda: all(_status(s, t) == 401 for t in bobs), "bob's tokens refused", 3.0
        )
        await until(pilot, lambda: _cells(people).count("revoked") == 3, "all three revoked", 5)
        assert _status(s, admin) == 200

        await pilot.press("escape")  # back to the escalations
        await until(pilot, lambda: not isinstance(app.screen, PeopleScreen), "the list")


async def test_a_supervisor_is_told_people_are_for_admins(
    clocked_server: ClockedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = clocked_server
    s.token("alice")
    app = SuperviseApp(services_for(s, s.token("sue", Role.SUPERVISOR), monkeypatch))
    async with app.run_test(size=(120, 32)) as pilot:
        await loaded(pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PeopleScreen), "the people view")
        people = app.screen
        assert isinstance(people, PeopleScreen)
        await until(pilot, lambda: "admin" in _cells(people), "the refusal")
        assert people.table.row_count == 0
        await pilot.press("x")  # nothing selected: said, no dialog
        await pilot.pause()
        assert app.screen is people


async def test_overdue_without_any_commit_is_resorted_on_the_console(
    clocked_server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = clocked_server
    s.ingest(test_wavs(2))
    distress = "a_" + flag(s, "alice", ["distress"])
    s.clock.advance(10 * 60)
    self_harm = "a_" + flag(s, "bob", ["self_harm"])
    app = SuperviseApp(services_for(s, s.token("sue", Role.SUPERVISOR), monkeypatch))
    app.services.poll_wait_s = 20.0  # the long-poll, not its timeout, must bring the news
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await loaded(pilot)
        assert screen.table._keys == [self_harm, distress]
        before = screen.board.page
        s.clock.advance(5 * 60 + 1)  # distress's ack deadline passes; nobody commits anything
        await until(
            pilot, lambda: screen.board.page is not before, "a page from the long-poll", 4.0
        )
        assert screen.table._keys == [distress, self_harm]
        assert str(screen.table.get_row(distress)[0]) == "!"
