"""Drive MiniaudioPlayer in a fresh process for the device-recovery tests (ALSA file sink).

Usage: python -m tests.audio.recovery_script '<json options>'
Options: mode ("forced": the device is stopped behind the player's back mid-clip, then the next
clip plays; "stress": load/play/seek/stop of short clips for `seconds`, then a marker clip).
Writes the clips' raw bytes to `out` (a directory) and prints one JSON line of results.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from annotator.audio.decode import DecodedAudio
from annotator.audio.miniaudio_player import MiniaudioPlayer
from annotator.audio.player import Segment


def clip(seconds: float, freq: float, rate: int = 16000, channels: int = 1) -> DecodedAudio:
    t = np.arange(round(seconds * rate)) / rate
    mono = np.sin(2 * np.pi * freq * t) * (8000 + 6000 * np.sin(2 * np.pi * 3.0 * t)) + 100
    samples = np.ascontiguousarray(np.repeat(np.rint(mono).astype(np.int16)[:, None], channels, 1))
    return DecodedAudio(samples=samples, sample_rate=rate, channels=channels, duration_s=seconds)


def forced(player: MiniaudioPlayer, out: Path) -> dict[str, Any]:
    """Stop miniaudio's device directly (as its ALSA backend sometimes does by itself) while the
    first clip is being fed, then check that clip finishes and the next one is heard."""
    first, second = clip(2.0, 440.0), clip(0.5, 1250.0)
    lib = player._ma.lib
    original = player._handed_to_device
    state: dict[str, Any] = {}

    def stop_behind_its_back(segment: Segment) -> None:
        # On miniaudio's audio thread, a few buffers into clip 1 (so the device is in its
        # started loop): stop the device from another thread and hold this callback until
        # miniaudio has begun stopping.
        pulls = state["pulls"] = state.get("pulls", 0) + 1
        handle = player._device._device
        if pulls == 3 and lib.ma_device_is_started(handle):
            state["feeding"] = player._feeding
            stopper = threading.Thread(target=lambda: state.update(rc=lib.ma_device_stop(handle)))
            stopper.start()
            state["thread"] = stopper
            deadline = time.monotonic() + 5.0
            while lib.ma_device_is_started(handle) and time.monotonic() < deadline:
                time.sleep(0.001)
        original(segment)

    player._handed_to_device = stop_behind_its_back  # type: ignore[method-assign]
    player.load(first)
    player.play()
    drained_first = player.wait_drained(5.0)
    if "thread" in state:
        state.pop("thread").join(5.0)
    player.load(second)
    player.play()
    drained_second = player.wait_drained(5.0)
    (out / "first.raw").write_bytes(first.samples.tobytes())
    (out / "second.raw").write_bytes(second.samples.tobytes())
    return {
        "stopped_mid_clip": state.get("feeding"),
        "stop_rc": state.get("rc"),
        "drained_first": drained_first,
        "drained_second": drained_second,
    }


def stress(player: MiniaudioPlayer, out: Path, seconds: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    formats = [(16000, 1)] * 9 + [(22050, 2)]
    undrained: list[int] = []
    iterations = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rate, channels = rng.choice(formats)
        audio = clip(rng.uniform(0.05, 0.3), rng.uniform(200, 2000), rate, channels)
        player.load(audio)
        player.play()
        for _ in range(rng.choice([0, 0, 1, 3])):
            player.seek(rng.uniform(0, audio.duration_s))
        if rng.random() < 0.3:
            player.stop()
        if not player.wait_drained(2.0):
            undrained.append(iterations)
            if len(undrained) >= 3:
                break
        iterations += 1
    marker = clip(0.3, 3000.0)
    player.load(marker)
    player.play()
    drained_marker = player.wait_drained(2.0)
    (out / "marker.raw").write_bytes(marker.samples.tobytes())
    return {"iterations": iterations, "undrained": undrained, "drained_marker": drained_marker}


def main() -> int:
    opts = json.loads(sys.argv[1])
    out = Path(opts["out"])
    player = MiniaudioPlayer()
    try:
        if opts["mode"] == "forced":
            result = forced(player, out)
        else:
            result = stress(player, out, float(opts.get("seconds", 8.0)), int(opts.get("seed", 0)))
        restarts = getattr(player, "device_restarts", None)  # None: a player without recovery
        result.update(restarts=restarts, last_error=player.last_error)
    finally:
        player.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
