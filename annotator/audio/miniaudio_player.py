"""miniaudio backend: a PlaybackDevice pulling frames from a generator.

The device is opened in the clip's exact format (int16, its channels and rate) so nothing is
converted on the way, and kept open across clips of the same format. It runs while playing and is
stopped at the clip's end (the generator asks the device thread to stop it: a device must not be
stopped from inside its own callback). A seek while playing just moves the generator's cursor,
so it is heard within one period instead of after a device restart.

miniaudio's device can also stop by itself. Its ALSA backend wakes the audio thread out of poll()
through an eventfd when the device is stopped; a stop that lands while that thread is not in poll()
can leave the token behind, and the next start reads it at its first poll and ends its loop (seen
on ALSA's unpaced file plugin, once in a few hundred to a few thousand clips; the stopped device
also keeps its stop event signalled). pyminiaudio notices none of it, so every later clip would be
silent. The device's stop callback reports every stop; one we did not ask for replaces the device
and resumes where the feed was, and a device that keeps stopping is given up on (`last_error`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
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
# A device that stops by itself this many times within _RESTART_WINDOW_S is given up on.
_MAX_RESTARTS = 5
_RESTART_WINDOW_S = 1.0

log = logging.getLogger(__name__)


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
        # Device thread only. Set around our own device.stop()/close(): miniaudio runs the stop
        # callback on its audio thread before those calls return, so a callback without it set
        # is a device that stopped by itself.
        self._stopping_device = False
        self._run_id = 0  # device starts, so a late stop report is told from the current run
        self._restart_times: list[float] = []
        self.device_restarts = 0  # unrequested stops recovered from (tests, bench, doctor)
        # Shared with the audio callback thread.
        self._feed_lock = threading.Lock()
        self._feed: Segment | None = None
        self._cursor = 0
        self._feeding = False
        super().__init__()

    def _device_play(self, segment: Segment) -> None:
        fmt = (segment.sample_rate, segment.channels)
        with self._feed_lock:
            fast = self._running and self._feeding and fmt == self._format
            alive = fast and self._device_alive()
            if alive:
                self._feed, self._cursor = segment, segment.start_frame
                return
        self._device_stop()
        if fast:
            # It stopped behind our back and its stop report has not been handled yet.
            self._close_device()
        if fmt != self._format:
            self._close_device()
            self._open_device(fmt)
        with self._feed_lock:
            self._feed, self._cursor, self._feeding = segment, segment.start_frame, True
        self._start_device()

    def _device_stop(self) -> None:
        with self._feed_lock:
            self._feed, self._feeding = None, False
        if self._running:
            self._running = False
            self._stopping_device = True
            try:
                self._device.stop()
            finally:
                self._stopping_device = False

    def _device_close(self) -> None:
        self._device_stop()
        self._close_device()

    def _device_drained(self) -> bool:
        return not self._running

    def _open_device(self, fmt: tuple[int, int]) -> None:
        device = open_device(self._ma, *fmt, period_ms=self._period_ms, pulse=self._pulse)
        device.stop_callback = functools.partial(self._on_device_stopped, device)
        self._device, self._format = device, fmt

    def _close_device(self) -> None:
        device, self._device, self._format = self._device, None, None
        if device is not None:
            self._stopping_device = True
            try:
                device.close()
            finally:
                self._stopping_device = False

    def _start_device(self) -> None:
        feeder = self._feeder()
        next(feeder)  # miniaudio wants a started generator
        self._run_id += 1
        self._device.start(feeder)
        self._running = True

    def _device_alive(self) -> bool:
        """Is miniaudio's device really started and pulling from a feeder of ours?"""
        device = self._device
        handle = getattr(device, "_device", None)
        if handle is None or device.callback_generator is None:
            return False
        return bool(self._ma.lib.ma_device_is_started(handle))

    def _on_device_stopped(self, device: Any) -> None:
        """pyminiaudio's stop callback, on miniaudio's audio thread: must not touch the device."""
        if not self._stopping_device:
            task = functools.partial(self._recover_device, device, self._run_id)
            self._call_on_device_thread(task)

    def _recover_device(self, device: Any, run_id: int) -> None:
        """The device stopped without being asked: replace it and resume where the feed is.

        A device that stopped by itself is not reused: miniaudio leaves its stop event signalled
        (the next stop() would return before the device has stopped) and possibly the stale
        wake-up token that stopped it.
        """
        if device is not self._device:
            return  # already replaced
        if run_id == self._run_id:
            # The report comes just before miniaudio marks the device stopped; closing it before
            # that would leave anyone waiting for the stop (miniaudio's stop()) hanging.
            deadline = time.monotonic() + 0.5
            while not self._device_settled() and time.monotonic() < deadline:
                time.sleep(0.001)
        with self._feed_lock:
            resume = self._running and self._feeding and self._feed is not None
        fmt = self._format
        self._close_device()
        if not resume or fmt is None:
            self._running = False
            return  # nothing was playing; the next clip opens a fresh device
        # `_running` stays set while we reopen: the clip is not drained yet.
        now = time.monotonic()
        self._restart_times = [t for t in self._restart_times if now - t < _RESTART_WINDOW_S]
        self._restart_times.append(now)
        if len(self._restart_times) > _MAX_RESTARTS:
            self._running = False
            with self._feed_lock:
                self._feed, self._feeding = None, False
            self._restart_times.clear()
            alsa = last_alsa_message()
            raise RuntimeError(
                f"the miniaudio playback device keeps stopping by itself ({_MAX_RESTARTS} restarts "
                f"in {_RESTART_WINDOW_S:g} s); muted until the next clip"
                + (f"; ALSA says: {alsa}" if alsa else "")
            )
        self.device_restarts += 1
        log.info("miniaudio device stopped by itself; reopened it (%d)", self.device_restarts)
        try:
            self._open_device(fmt)
            self._start_device()
        except Exception:
            self._running = False
            with self._feed_lock:
                self._feed, self._feeding = None, False
            raise

    def _device_settled(self) -> bool:
        """Has miniaudio's device reached "stopped" (not just "no longer started")?"""
        handle = getattr(self._device, "_device", None)
        if handle is None:
            return True
        ffi, lib = self._ma.ffi, self._ma.lib
        try:  # ma_atomic_device_state wraps one ma_device_state; pyminiaudio has no getter
            state = int(ffi.cast("ma_device_state *", ffi.addressof(handle.state))[0])
        except (AttributeError, TypeError, ffi.error):
            return not lib.ma_device_is_started(handle)
        return state in (lib.ma_device_state_stopped, lib.ma_device_state_uninitialized)

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
