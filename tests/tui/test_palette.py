"""Every action is in the command palette, and running one from there acts on the clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.actions import ANNOTATE, actions_for
from annotator.screens.annotate import AnnotateScreen
from annotator.screens.commands import ActionCommands
from tests.tui.fakes import make_app, ready_clip
from tests.tui.helpers import type_text, wait_until


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


async def test_every_action_is_discoverable(tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1)])
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        provider = ActionCommands(app.screen)
        hits = [hit async for hit in provider.discover()]
        mine = actions_for(ANNOTATE)
        assert len(hits) == len(mine)
        helps = " ".join(str(hit.help) for hit in hits)
        assert all(spec.id in helps for spec in mine)
        # The supervisor's console's own commands are not the annotator's.
        assert "escalation.ack" not in helps


async def test_running_a_command_from_the_palette(tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AnnotateScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await type_text(pilot, "distress")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "distress" in screen.flag_panel.flags)
