"""Transport, tag and help keys on fixed data (no server): each key reaches its action even while
the transcript editor has focus."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.actions import ANNOTATE, actions_for
from annotator.keymap import load_keymap
from annotator.screens.annotate import AnnotateScreen
from annotator.screens.help import HelpScreen, key_rows
from tests.tui.fakes import FrozenPlayer, make_app, ready_clip
from tests.tui.helpers import type_text


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


async def test_transport_keys_while_typing(tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1)])
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AnnotateScreen)
        player = app.services.player
        assert isinstance(player, FrozenPlayer)
        await type_text(pilot, "hello")
        assert player.playing
        await pilot.press("f5")
        assert not player.playing
        await pilot.press("alt+k")
        assert player.playing
        player.position = 1.5
        await pilot.press("alt+left")
        assert player.position == 0.0  # 2 s back from 1.5 s, clamped at the start
        player.position = 0.5
        await pilot.press("f3")
        assert player.position == pytest.approx(2.5)
        await pilot.press("alt+up", "alt+up")
        assert player.speed == pytest.approx(1.5)
        for _ in range(10):
            await pilot.press("alt+down")
        assert player.speed == pytest.approx(0.5)  # clamped
        await pilot.press("f4")
        assert player.position == 0.0 and player.playing
        await pilot.press("alt+n")
        assert screen.transcript.text == "hello [noise]"
        assert app.focused is screen.transcript.editor  # typing never lost focus
        await pilot.press("alt+shift+c")
        assert screen.transcript.text == ""


async def test_help_overlay_lists_every_key(tmp_path: Path) -> None:
    rows = key_rows(load_keymap("pedal", {}))
    assert len(rows) == len(actions_for(ANNOTATE))
    assert all(keys != "—" for _, keys, _ in rows)
    app = make_app(tmp_path, [ready_clip(1)])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AnnotateScreen)


async def test_type_ahead_keeps_the_order_keys_were_typed(tmp_path: Path) -> None:
    """Keys arriving faster than the form handles them (a fast typist, a loaded machine): submit
    and the other priority keys act exactly where they were typed, and keys typed after submit
    land on the next clip."""
    from textual import events

    app = make_app(tmp_path, [ready_clip(i, hint=f"hint {i}") for i in range(1, 5)])

    def typed(text: str) -> list[events.Key]:
        return [events.Key("space" if ch == " " else ch, ch) for ch in text]

    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        burst: list[events.Key] = []
        for n in (1, 2):
            burst += [events.Key("alt+shift+c", "C"), *typed(f"hello {n}")]
            burst += [events.Key("alt+n", "n"), events.Key("ctrl+l", None)]
            burst += [*typed("generalgreet"), events.Key("enter", "\r")]
            burst += [events.Key("ctrl+s", None)]
        burst += typed("next")
        for key in burst:  # all at once, without waiting for the app to catch up
            app.post_message(key)
        screen = app.screen
        assert isinstance(screen, AnnotateScreen)
        for _ in range(100):
            await pilot.pause(0.02)
            if screen.session.done == 2 and screen.transcript.text.endswith("next"):
                break
        history = app.services.store.history(5)
        assert [(h.annotation.transcript, h.annotation.intent) for h in history] == [
            ("hello 2 [noise]", "general_greet"),
            ("hello 1 [noise]", "general_greet"),
        ]
        assert screen.transcript.text == "hint 3next"


async def test_keys_typed_through_a_skip_and_an_escalation_flag_land_where_they_belong(
    tmp_path: Path,
) -> None:
    """A burst through the skip dialog (ctrl+o, Down, Enter) and a flag that opens the note:
    the reason chosen is the one highlighted, the keys after it are on the next clip, and the
    keys after the distress flag are in the note."""
    from textual import events

    app = make_app(tmp_path, [ready_clip(i, hint=f"hint {i}") for i in range(1, 4)])

    def typed(text: str) -> list[events.Key]:
        return [events.Key("space" if ch == " " else ch, ch) for ch in text]

    released: list[tuple[str, str]] = []
    source = app.services.prefetcher
    source.release = lambda lease_id, reason, detail=None: released.append(  # type: ignore[method-assign]
        (lease_id, reason.value)
    )
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AnnotateScreen)
        burst = [events.Key("ctrl+o", None), events.Key("down", None), events.Key("enter", "\r")]
        burst += typed(" more")
        burst += [events.Key("alt+shift+d", "D"), *typed("help")]
        for key in burst:
            app.post_message(key)
        for _ in range(100):
            await pilot.pause(0.02)
            if screen.flag_panel.note == "help":
                break
        assert released == [("lease-0001", "broken_audio")]
        assert screen.current is not None and screen.current.lease_id == "lease-0002"
        assert screen.transcript.text == "hint 2 more"
        assert screen.flag_panel.flags == {"distress"}
        assert screen.flag_panel.note == "help"
