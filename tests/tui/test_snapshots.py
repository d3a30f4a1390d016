"""Snapshots of the main states, from fixed data: a real-shaped lease, real decoded audio, a player
whose playhead does not move, and no network, so every run draws the same screen.

Update with `pytest tests/tui/test_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import argparse
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annotator.app import AnnotatorApp, Services
from annotator.audio.decode import DecodedAudio, decode, envelope
from annotator.config import load_settings
from annotator.keymap import load_keymap
from annotator.prefetch import ENVELOPE_BUCKETS, PrefetchState, PrefetchStatus, ReadyClip
from annotator.screens.annotate import AnnotateScreen
from annotator.store.db import LocalStore
from api.models import Clip, Lease, ReleaseReason
from api.taxonomy import load_default_taxonomy
from tests.fixtures.server import wav_bytes
from tests.tui.helpers import type_text

SIZE = (100, 32)
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


class FrozenPlayer:
    """A Player whose playhead stays where the test puts it (a snapshot cannot wait on a clock)."""

    name = "none"

    def __init__(self) -> None:
        self.position = 1.2
        self.playing = True
        self.speed = 1.0
        self.first_frame_at: float | None = None

    def load(self, audio: DecodedAudio) -> None:
        self.position = 1.2

    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def toggle(self) -> None:
        self.playing = not self.playing

    def seek(self, seconds: float) -> None:
        self.position = seconds

    def set_speed(self, speed: float) -> None:
        self.speed = speed

    def stop(self) -> None:
        self.playing = False

    def close(self) -> None:
        pass


class FixedSource:
    """A ClipSource serving a fixed list of clips, with no thread and no network."""

    def __init__(self, clips: Iterable[ReadyClip], state: PrefetchState = PrefetchState.OK) -> None:
        self.depth = 3
        self.lost: deque[str] = deque()
        self._clips = deque(clips)
        self._state = state

    def set_listener(self, on_change: Callable[[], None] | None) -> None:
        pass

    @property
    def started(self) -> bool:
        return False

    def start(self) -> None:
        pass

    def take(self) -> ReadyClip | None:
        return self._clips.popleft() if self._clips else None

    def request(self) -> None:
        pass

    def adopt(self, leases: Iterable[Lease]) -> None:
        pass

    def finish(self, lease_id: str) -> None:
        pass

    def release(self, lease_id: str, reason: ReleaseReason, detail: str | None = None) -> None:
        pass

    def wake(self) -> None:
        pass

    @property
    def status(self) -> PrefetchStatus:
        return PrefetchStatus(self._state, min(3, len(self._clips)))

    def close(self, *, release_unused: bool = True, timeout: float = 5.0) -> None:
        pass


def ready_clip(index: int, *, hint: str | None = None, broken: bool = False) -> ReadyClip:
    data = wav_bytes(index, seconds=2.0)
    audio = decode(data)
    lease = Lease(
        lease_id=f"lease-{index:04d}",
        fence=1,
        expires_at=FAR_FUTURE,
        clip=Clip(
            clip_id=f"Q7x{index:02d}kLm9Zp2",
            duration_s=audio.duration_s,
            sample_rate=16000,
            channels=1,
            locale="en-GB",
            sha256="0" * 64,
            asr_hint=hint,
        ),
    )
    if broken:
        return ReadyClip(lease, data, None, [], error="the audio cannot be decoded: not a WAV")
    return ReadyClip(lease, data, audio, envelope(audio, ENVELOPE_BUCKETS))


def make_app(tmp_path: Path, clips: list[ReadyClip], **kw: Any) -> AnnotatorApp:
    args = argparse.Namespace(
        server=None, token=None, ca_bundle=None, insecure=False, config=None,
        audio="none", keymap=None,
    )  # fmt: skip
    services = Services(
        settings=load_settings(args),
        keymap=load_keymap("default", {}),
        taxonomy=load_default_taxonomy(),
        client_factory=None,
        player=FrozenPlayer(),
        player_reason="audio off (--audio none): muted",
        store=LocalStore.open(tmp_path / "local.db"),
        prefetcher=FixedSource(clips, **kw),
        clock=lambda: 1000.0,
    )
    return AnnotatorApp(services)


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
