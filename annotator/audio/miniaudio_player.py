"""miniaudio backend: a PlaybackDevice pulling frames from a generator.

The device is opened in the clip's exact format (int16, its channels and rate) so nothing is
converted on the way, and kept open across clips of the same format. It runs while playing and is
stopped at the clip's end (the generator asks the device thread to stop it: a device must not be
stopped from inside its own callback). A seek while playing just moves the generator's cursor,
so it is heard within one period instead of after a device restart.

The playhead is the base class's wall clock, not "frames fed minus latency": the feed runs a
period or two ahead of the speaker, and the wall clock is what the listener hears.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Generator
from types import ModuleType
from typing import Any, cast

from annotator.audio.alsa import last_alsa_message, silence_alsa_errors
from annotator.audio.player import BackendUnavailableError, BasePlayer, Segment

# Period length: short enough that a seek is heard quickly, long enough that a busy GIL
# (a WSOLA render on another thread) does not starve the callback into underruns.
DEFAULT_PERIOD_MS = 30
# Silent periods fed after the clip so its last frames are played out before the device stops.
_TAIL_PERIODS = 4


def import_miniaudio() -> ModuleType:
    try:
        import miniaudio
    except ImportError as exc:
        raise BackendUnavailableError(
            f"miniaudio is not installed ({exc}); `pip install miniaudio`"
        ) from exc
    return cast(ModuleType, miniaudio)


def open_device(
    ma: ModuleType,
    sample_rate: int,
    channels: int,
    period_ms: int = DEFAULT_PERIOD_MS,
    *,
    pulse: bool = False,
) -> Any:
    """Open a real playback device or raise BackendUnavailableError (miniaudio's null backend
    "plays" into the void, which would hide a missing sound card)."""
    silence_alsa_errors()
    try:
        device = ma.PlaybackDevice(
            output_format=ma.SampleFormat.SIGNED16,
            nchannels=channels,
            sample_rate=sample_rate,
            buffersize_msec=period_ms,
            app_name="annotator",
            # PulseAudio/PipeWire only, e.g. PULSE_SERVER=tcp:localhost:24713 over an SSH tunnel.
            backends=[ma.Backend.PULSEAUDIO] if pulse else None,
        )
    except ma.MiniaudioError as exc:
        where = "a PulseAudio server (is PULSE_SERVER set and reachable?)" if pulse else ""
        raise BackendUnavailableError(
            f"miniaudio cannot open {where or 'a playback device'} ({_describe(exc)})"
        ) from exc
    if str(device.backend).lower() == "null":
        device.close()
        raise BackendUnavailableError("miniaudio found no playback device (only its null backend)")
    return device


def _describe(exc: Exception) -> str:
    # MiniaudioError carries (message, ma_result); ALSA's own words say more than the code.
    parts = [str(a) for a in exc.args]
    text = f"{parts[0]}, code {parts[1]}" if len(parts) == 2 else str(exc)
    alsa = last_alsa_message()
    return f"{text}; ALSA says: {alsa}" if alsa else text


class MiniaudioPlayer(BasePlayer):
    name = "miniaudio"

    def __init__(self, period_ms: int = DEFAULT_PERIOD_MS, *, pulse: bool = False) -> None:
        self._ma = import_miniaudio()
        self._period_ms = period_ms
        self._pulse = pulse
        if pulse:
            self.name = "pulse"
        self._device: Any = None
        self._format: tuple[int, int] | None = None
        self._running = False
        # Shared with the audio callback thread.
        self._feed_lock = threading.Lock()
        self._feed: Segment | None = None
        self._cursor = 0
        self._feeding = False
        super().__init__()

    def _device_play(self, segment: Segment) -> None:
        fmt = (segment.sample_rate, segment.channels)
        with self._feed_lock:
            if self._running and self._feeding and fmt == self._format:
                self._feed, self._cursor = segment, segment.start_frame
                return
        self._device_stop()
        if fmt != self._format:
            self._close_device()
            self._device = open_device(self._ma, *fmt, period_ms=self._period_ms, pulse=self._pulse)
            self._format = fmt
        with self._feed_lock:
            self._feed, self._cursor, self._feeding = segment, segment.start_frame, True
        feeder = self._feeder()
        next(feeder)  # miniaudio wants a started generator
        self._device.start(feeder)
        self._running = True

    def _device_stop(self) -> None:
        with self._feed_lock:
            self._feed, self._feeding = None, False
        if self._running:
            self._running = False
            self._device.stop()

    def _device_close(self) -> None:
        self._device_stop()
        self._close_device()

    def _device_drained(self) -> bool:
        return not self._running

    def _close_device(self) -> None:
        device, self._device, self._format = self._device, None, None
        if device is not None:
            device.close()

    def _feeder(self) -> Generator[Any, int, None]:
        frames = yield b""
        silent_periods = 0
        while True:
            with self._feed_lock:
                segment = self._feed
                chunk: Any = b""
                if segment is None:
                    self._feeding = False
                else:
                    chunk = segment.samples[self._cursor : self._cursor + frames]
                    self._cursor += len(chunk)
                    silent_periods = 0 if len(chunk) else silent_periods + 1
                    if silent_periods > _TAIL_PERIODS:
                        self._feeding = False
                feeding = self._feeding
            if not feeding:
                if segment is not None:
                    self._call_on_device_thread(functools.partial(self._stop_after_end, segment))
                return
            if len(chunk) and segment is not None:
                self._handed_to_device(segment)
            # b"" leaves miniaudio's pre-silenced buffer: the tail pushes the last real
            # frames out of the device buffer before we stop it.
            frames = yield chunk

    def _stop_after_end(self, segment: Segment) -> None:
        with self._feed_lock:
            finished = self._feed is segment and not self._feeding
        if finished and self._running:
            self._device_stop()
