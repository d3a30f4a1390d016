"""The cyclic collector is held off while the TUI starts (annotator/startup_gc.py) and runs again
once the first screen is drawn: the first clip plays without it, nothing after runs without it."""

from __future__ import annotations

import gc
from pathlib import Path

from annotator import startup_gc
from tests.tui.fakes import FrozenPlayer, make_app, ready_clip
from tests.tui.helpers import wait_for_clip


class GcWatchingPlayer(FrozenPlayer):
    def __init__(self) -> None:
        super().__init__()
        self.collector_on_at_play: list[bool] = []

    def play(self) -> None:
        super().play()
        self.collector_on_at_play.append(gc.isenabled())


async def test_the_collector_runs_again_once_the_first_clip_is_on_screen(tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    player = GcWatchingPlayer()
    app.services.player = player
    startup_gc.hold()  # as `annotator` does before its imports
    try:
        assert not gc.isenabled()
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_clip(pilot, app)
            await pilot.pause()
            assert gc.isenabled(), "still held after the first screen was drawn"
            assert gc.get_freeze_count() > 0  # start-up's objects set aside
        assert player.collector_on_at_play[:1] == [False]
    finally:
        startup_gc.release()
        gc.unfreeze()
        gc.enable()


def test_release_leaves_a_collector_it_did_not_turn_off_alone() -> None:
    gc.disable()
    try:
        startup_gc.hold()
        startup_gc.release()
        assert not gc.isenabled()  # someone else's choice
    finally:
        gc.enable()
    startup_gc.release()
    assert gc.isenabled()
