"""While keys are held for the next clip (empty queue), the app's own keys still act at once.

Pilot, the real services and a real server with an empty queue: typed keys are kept (nothing
goes into the empty form), help opens and closes over them, and they land, in order, in the
clip that arrives (the tmux test, tests/tui/test_typing_while_waiting.py, checks the server's
copy of a whole annotation typed that way).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from annotator.screens.help import HelpScreen
from tests.fixtures.server import LiveServer
from tests.tui.helpers import annotate_screen, services_for, type_text, wait_until


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


async def test_help_opens_over_held_keys_and_they_land_in_the_next_clip(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    services = services_for(live_server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_until(pilot, lambda: app._annotate_screen() is not None)
            screen = annotate_screen(app)
            await wait_until(pilot, lambda: screen.key_hold.holding)
            await type_text(pilot, "ab")
            assert len(screen.key_hold) == 2 and screen.transcript.text == ""
            await pilot.press("f1")  # the app's own key: not held
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is screen)
            await type_text(pilot, "c")
            assert len(screen.key_hold) == 3
            live_server.ingest(test_wavs(1))
            await wait_until(pilot, lambda: screen.current is not None, timeout=30)
            await wait_until(pilot, lambda: screen.transcript.text == "abc")
            assert not screen.key_hold.holding and len(screen.key_hold) == 0
    finally:
        services.shutdown()
