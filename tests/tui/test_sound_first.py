"""Submit → next clip: the sound is asked for first, and the redraw waits (briefly) for the device.

The event loop sleeps after `player.play()` until the device thread has handed over the first
buffer, at most AUDIO_START_WAIT_S: the clip change's redraw would otherwise hold the interpreter
while the device thread waits for it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from annotator.app import AnnotatorApp
from annotator.screens import annotate
from tests.tui.fakes import FrozenPlayer, make_app, ready_clip
from tests.tui.helpers import wait_for_clip

SIZE = (100, 32)


class StampingPlayer(FrozenPlayer):
    """Records the order of calls; its "device" takes the first buffer on the first sleep."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def load(self, audio: Any) -> None:
        super().load(audio)
        self.first_frame_at = None
        self.log.append("load")

    def play(self) -> None:
        super().play()
        self.log.append("play")


def _sleeps(monkeypatch: pytest.MonkeyPatch, player: StampingPlayer | None) -> list[float]:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if player is not None:
            player.first_frame_at = time.monotonic()

    monkeypatch.setattr(annotate, "_sleep", sleep)
    return slept


async def _submit_next(app: AnnotatorApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        screen.transcript.load("turn on the lights")
        screen.intent.pick("iot_hue_lighton")
        await pilot.pause()
        first = screen.current
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.current is not None and screen.current is not first


async def test_the_next_clip_plays_before_its_form_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    log: list[str] = []
    player = StampingPlayer(log)
    app.services.player = player
    slept = _sleeps(monkeypatch, player)
    original = annotate.AnnotateScreen._reset_form

    def reset_form(self: annotate.AnnotateScreen, transcript: str) -> None:
        log.append("form")
        original(self, transcript)

    monkeypatch.setattr(annotate.AnnotateScreen, "_reset_form", reset_form)
    await _submit_next(app)
    # Each clip: sound, one short sleep (the device stamps its first frame), then the form.
    assert log == ["load", "play", "form", "load", "play", "form"]
    assert len(slept) == 2


async def test_the_wait_for_the_device_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])  # FrozenPlayer never stamps
    slept = _sleeps(monkeypatch, None)
    clock = iter(range(10_000_000))
    monkeypatch.setattr(annotate, "_monotonic", lambda: next(clock) * 0.0005)
    await _submit_next(app)
    per_clip = int(annotate.AUDIO_START_WAIT_S / 0.0005) + 1
    assert 0 < len(slept) <= 2 * per_clip
