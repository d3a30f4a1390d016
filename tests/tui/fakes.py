"""Fixed, real-shaped data for TUI tests that must not depend on a server or a clock."""

from __future__ import annotations

import argparse
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from annotator.app import AnnotatorApp, Services
from annotator.audio.decode import DecodedAudio, decode, envelope
from annotator.config import load_settings
from annotator.keymap import load_keymap
from annotator.prefetch import ENVELOPE_BUCKETS, PrefetchState, PrefetchStatus, ReadyClip
from annotator.store.db import LocalStore
from api.models import Clip, Lease, ReleaseReason
from api.taxonomy import load_default_taxonomy
from tests.fixtures.server import wav_bytes

FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


class FrozenPlayer:
    """A Player whose playhead stays where the test puts it (a snapshot cannot wait on a clock)."""

    name = "none"

    def __init__(self) -> None:
        self.position = 1.2
        self.playing = True
        self.speed = 1.0
        self.gain_db = 0.0
        self.applied_gain_db = 0.0
        self.gain_capped = False
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

    def set_gain(self, gain_db: float) -> None:
        self.gain_db = self.applied_gain_db = gain_db

    def step_gain(self, steps: int) -> bool:
        self.set_gain(self.gain_db + 6.0 * steps)
        return True

    def set_loudness_target(self, target_dbfs: float | None) -> None:
        pass

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

    def end_break(self) -> None:
        pass

    @property
    def status(self) -> PrefetchStatus:
        return PrefetchStatus(self._state, min(3, len(self._clips)))

    def close(self, *, release_unused: bool = True, timeout: float = 5.0) -> list[Lease]:
        left = [] if release_unused else [c.lease for c in self._clips]
        self._clips.clear()
        return left


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
