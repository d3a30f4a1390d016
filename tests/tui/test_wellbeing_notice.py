"""The wellbeing notice tells the truth about the report, names the flags, and reads whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.screens.wellbeing import WellbeingScreen
from tests.tui.fakes import make_app, ready_clip
from tests.tui.helpers import type_text, wait_until


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_offline_escalation_notice_says_queued_names_the_flag_and_fits(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app._annotate_screen() is not None)
        await pilot.pause()
        await type_text(pilot, "please help me")
        await pilot.press("ctrl+l")
        await type_text(pilot, "generalquirky")
        await pilot.press("enter", "alt+shift+s")  # self_harm, not distress
        await type_text(pilot, "says they will hurt themselves")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, WellbeingScreen))
        await pilot.pause()
        notice = app.screen
        assert isinstance(notice, WellbeingScreen)
        text = notice.text
        assert "self harm" in text and "distress" not in text
        # No sync engine here, nothing was sent: the notice must not claim it was delivered.
        assert "Queued — reaches supervisors when you are back online (1 waiting)" in text
        assert "gone to" not in text and "Delivered" not in text
        body = notice.query_one("#wellbeing-text")
        # Every wrapped line is inside the box and the box inside the screen: nothing cut off.
        assert body.virtual_size.height <= body.size.height
        assert body.virtual_size.width <= body.size.width
        box = notice.query_one("#wellbeing")
        assert box.region.right <= size[0] and box.region.bottom <= size[1]
