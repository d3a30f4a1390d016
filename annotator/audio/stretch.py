"""Playback speed without pitch change: audiotsm's WSOLA over the whole clip.

A 30 s clip renders in about 0.05–0.2 s at 16 kHz mono and about 1 s at 48 kHz stereo, which is
why the player runs it on a worker thread and keeps playing the old speed until it is ready.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from annotator.audio.decode import Int16Frames

MIN_SPEED = 0.5
MAX_SPEED = 2.0
_TAIL_PAD = 4096  # frames of silence; > audiotsm's default frame length plus tolerance


def normalise_speed(speed: float) -> float:
    """Clamp to 0.5–2.0 and round to 0.01 so renders cache under stable keys."""
    if not math.isfinite(speed):
        return 1.0
    return round(min(MAX_SPEED, max(MIN_SPEED, speed)), 2)


def stretch(samples: Int16Frames, speed: float) -> Int16Frames:
    """The clip played `speed` times faster at the same pitch: about frames/speed frames."""
    if speed == 1.0 or samples.shape[0] == 0:
        return samples
    # Imported here: audiotsm is only needed once someone changes speed (keeps cold start lean).
    from audiotsm import wsola
    from audiotsm.io.array import ArrayReader, ArrayWriter

    frames, channels = int(samples.shape[0]), int(samples.shape[1])
    # WSOLA leaves out the last analysis frame or two; a silent tail keeps the clip's real end,
    # and trimming to frames/speed makes clip time ↔ render frame a plain division.
    planar = np.zeros((channels, frames + _TAIL_PAD), dtype=np.float32)
    planar[:, :frames] = samples.T / 32768.0
    writer = ArrayWriter(channels)
    _run_yielding(wsola(channels, speed=speed), ArrayReader(planar), writer)
    want = round(frames / speed)
    out = np.zeros((want, channels), dtype=np.int16)
    rendered = np.asarray(writer.data, dtype=np.float32).T[:want]
    out[: rendered.shape[0]] = np.clip(np.rint(rendered * 32768.0), -32768, 32767)
    return out


def _run_yielding(tsm: Any, reader: Any, writer: Any) -> None:
    """audiotsm's TSM.run, but handing the GIL back after every frame.

    Without the sleep(0) the render holds the GIL for whole switch intervals (5 ms), and the
    TUI's event loop, waking from a timer, waits that long behind it.
    """
    finished = False
    while not (finished and reader.empty):
        tsm.read_from(reader)
        _, finished = tsm.write_to(writer)
        time.sleep(0)
    finished = False
    while not finished:
        _, finished = tsm.flush_to(writer)
    tsm.clear()
