"""Snapshots of the main states, from fixed data: a real-shaped lease, real decoded audio, a player
whose playhead does not move, a frozen clock, cursors that do not blink (`freeze_moving_parts`)
and no network, so every run draws the same screen however long it took to get there.

Update with `pytest tests/tui/test_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annotator.screens.annotate import AnnotateScreen
from tests.fixtures.snapshots import freeze_moving_parts
from tests.tui.fakes import make_app, ready_clip
from tests.tui.helpers import type_text

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    for name in ("ANNOTATOR_SERVER", "ANNOTATOR_TOKEN", "ANNOTATOR_AUDIO", "ANNOTATOR_KEYMAP"):
        monkeypatch.delenv(name, raising=False)


def screen_of(pilot: Pilot[Any]) -> AnnotateScreen:
    screen = pilot.app._annotate_screen()  # type: ignore[attr-defined]
    assert isinstance(screen, AnnotateScreen)
    return screen


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.pause(0.1)
    await freeze_moving_parts(pilot)


def test_loaded_clip(snap_compare: Any, tmp_path: Path) -> None:
    clips = [ready_clip(1, hint="set and alarm for seven thirteen"), ready_clip(2), ready_clip(3)]
    app = make_app(tmp_path, clips)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_validation_error(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await type_text(pilot, "turn off the [noize] lights")
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_escalation_note(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await type_text(pilot, "please help me")
        await pilot.press("alt+shift+d")
        await settle(pilot)
        await type_text(pilot, "a woman screams in the background")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_wellbeing_notice(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await type_text(pilot, "please help me")
        await pilot.press("ctrl+l")
        await type_text(pilot, "generalquirky")
        await pilot.press("enter", "alt+shift+d")
        await type_text(pilot, "a woman screams")
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_overlay(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 40), run_before=run_before)


def test_offline_banner(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen_of(pilot).set_offline(True, "cannot reach https://queue.example.org")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_broken_audio(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1, broken=True)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_tiny_terminal(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=(60, 20), run_before=run_before)


def test_minimum_size(snap_compare: Any, tmp_path: Path) -> None:
    """80×24 is the smallest supported terminal: everything must still be usable there."""
    app = make_app(tmp_path, [ready_clip(1, hint="what's the weather in leeds")])

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("hint", [None, "set and alarm for seven thirteen"])
async def test_a_snapshot_does_not_depend_on_how_long_it_took(
    tmp_path: Path, hint: str | None
) -> None:
    """The same state taken 0.1 s and 0.75 s after it was reached draws the same (a busy machine
    once failed test_offline_banner: the cursor was in the hidden half of its blink)."""

    async def shot(delay: float) -> str:
        app = make_app(tmp_path / str(delay), [ready_clip(1, hint=hint), ready_clip(2)])
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen_of(pilot).set_offline(True, "cannot reach https://queue.example.org")
            await pilot.pause(delay)
            await freeze_moving_parts(pilot)
            return app.export_screenshot(title="frozen")

    assert await shot(0.1) == await shot(0.75)  # 0.75 s: the hidden half of a blink
