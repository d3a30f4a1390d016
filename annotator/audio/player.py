"""The player interface the TUI talks to, and the base class every backend shares.

The base class owns the clock and the speed renders; a backend only implements four device
hooks that run on the player's own device thread (never the caller's):

    _device_play(segment)  play segment.samples[segment.start_frame:], replacing what plays
    _device_stop()         silence
    _device_close()        release the device for good
    _device_drained()      has the device consumed everything it was handed? (optional)

and calls `self._handed_to_device(segment)` once the first buffer of a segment is with the device.
A relay backend (issue 5) fits the same hooks: `segment.load_id` tells it when to ship new PCM
and `start_frame`/`speed` are the commands.

The playhead is the wall clock: position = anchor + (now - anchor time) * audible speed. It is
cheap to read (no device call) and moves in real time even when muted. The device may start a
few milliseconds after the call that asked for it; the clock does not wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from annotator.audio import gain as volume
from annotator.audio._worker import LatestStateWorker, TaskThread
from annotator.audio.decode import DecodedAudio, Int16Frames
from annotator.audio.stretch import normalise_speed, stretch


class BackendUnavailableError(Exception):
    """A backend cannot play here; the message says why and what to do."""


@runtime_checkable
class Player(Protocol):
    """What the TUI calls. No method blocks the caller for more than about a millisecond."""

    name: str

    def load(self, audio: DecodedAudio) -> None: ...
    def play(self) -> None: ...
    def pause(self) -> None: ...
    def toggle(self) -> None: ...
    def seek(self, seconds: float) -> None: ...
    def set_speed(self, speed: float) -> None: ...
    def set_gain(self, gain_db: float) -> None: ...
    def step_gain(self, steps: int) -> bool: ...
    def set_loudness_target(self, target_dbfs: float | None) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

    @property
    def position(self) -> float: ...
    @property
    def playing(self) -> bool: ...
    @property
    def speed(self) -> float: ...
    @property
    def gain_db(self) -> float: ...
    @property
    def applied_gain_db(self) -> float: ...
    @property
    def gain_capped(self) -> bool: ...
    @property
    def first_frame_at(self) -> float | None: ...


@dataclass(frozen=True, eq=False)
class Segment:
    """What the device should play now: `samples[start_frame:]` of the render for `speed`."""

    samples: Int16Frames
    sample_rate: int
    channels: int
    start_frame: int
    speed: float
    load_id: int
    generation: int


class BasePlayer:
    """Clock, speed renders, gain and the device thread; subclasses supply the device hooks.

    Gain (the annotator's steps plus the optional loudness normalisation, see `gain.py`) is
    applied here, to every render, before any backend sees it: `_renders` holds what is heard,
    `_raw_renders` the ungained WSOLA renders it is made from.
    """

    name: str = "base"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._audio: DecodedAudio | None = None
        self._load_id = 0
        self._generation = 0
        self._renders: dict[float, Int16Frames] = {}
        self._raw_renders: dict[float, Int16Frames] = {}
        self._gain_db = 0.0
        self._loudness_target: float | None = None
        self._levels = volume.ClipLevels(float("inf"), None)
        self._gain_id = 0
        self._target_speed = 1.0
        self._audible_speed = 1.0
        self._playing = False
        self._anchor_pos = 0.0
        self._anchor_t = 0.0
        self._first_frame_at: float | None = None
        self._last_error: str | None = None
        self._closed = False
        # Started up front so the first play() does not pay for thread creation.
        self._worker: LatestStateWorker[Segment | None] = LatestStateWorker(
            f"audio-{self.name}", self._apply_segment, self._record_error
        )
        self._renderer = TaskThread(f"audio-render-{self.name}", self._record_error)

    # ----- the Player protocol -------------------------------------------------------------

    def load(self, audio: DecodedAudio) -> None:
        with self._lock:
            if self._closed:
                return
            self._audio = audio
            self._load_id += 1
            self._levels = audio.levels
            self._raw_renders = {1.0: audio.samples}
            self._renders = {1.0: volume.apply_gain(audio.samples, self._applied_gain_locked())}
            self._audible_speed = 1.0
            self._playing = False
            self._anchor_pos = 0.0
            self._first_frame_at = None
            self._publish_locked()
            # The chosen speed carries over to the next clip; until its render is ready the
            # new clip plays at 1x.
            if self._target_speed != 1.0:
                self._schedule_render_locked(self._target_speed)

    def play(self) -> None:
        with self._lock:
            if self._audio is None or self._closed:
                return
            now = time.monotonic()
            pos = self._position_locked(now)
            if self._playing:
                return
            if pos >= self._audio.duration_s:
                pos = 0.0  # play at the end means from the top, like a replay
            self._anchor_pos, self._anchor_t, self._playing = pos, now, True
            self._publish_locked()

    def pause(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._anchor_pos = self._position_locked(now)
            if not self._playing:
                return
            self._playing = False
            self._publish_locked()

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def seek(self, seconds: float) -> None:
        with self._lock:
            if self._audio is None:
                return
            target = seconds if seconds == seconds else 0.0  # NaN → start
            target = min(max(0.0, target), self._audio.duration_s)
            now = time.monotonic()
            self._position_locked(now)  # settles "ran off the end" before re-anchoring
            self._anchor_pos, self._anchor_t = target, now
            if self._playing:
                if target >= self._audio.duration_s:
                    self._playing = False
                self._publish_locked()

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._target_speed = normalise_speed(speed)
            if self._audio is None:
                return
            if self._target_speed in self._renders:
                self._switch_speed_locked(self._target_speed)
            else:
                self._schedule_render_locked(self._target_speed)

    def set_gain(self, gain_db: float) -> None:
        """The annotator's gain in dB (kept to ±24 dB); each clip caps it at its own headroom."""
        self._change_gain(gain_db=volume.clamp_step(gain_db))

    def step_gain(self, steps: int) -> bool:
        """±6 dB per step from what is heard now; False (nothing changes) when a step up would
        clip. Stepping down from a capped gain starts at the cap, so the first step is audible."""
        with self._lock:
            requested, applied = self._requested_gain_locked(), self._applied_gain_locked()
            if steps > 0 and requested >= self._levels.headroom_db:
                return False
            start = self._gain_db - max(0.0, requested - applied)
        self.set_gain(start + steps * volume.GAIN_STEP_DB)
        return True

    def set_loudness_target(self, target_dbfs: float | None) -> None:
        """Normalise each clip's RMS to `target_dbfs` (dB full scale) before the gain; None: off."""
        self._change_gain(target=target_dbfs, set_target=True)

    def stop(self) -> None:
        with self._lock:
            was_playing = self._playing
            self._playing = False
            self._anchor_pos = 0.0
            if was_playing:
                self._publish_locked()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._playing = False
        self._renderer.stop()
        self._worker.close(self._device_close, timeout=1.0)

    @property
    def position(self) -> float:
        with self._lock:
            return self._position_locked(time.monotonic())

    @property
    def playing(self) -> bool:
        with self._lock:
            self._position_locked(time.monotonic())
            return self._playing

    @property
    def speed(self) -> float:
        """The speed asked for (what the UI shows and steps from), even while it renders."""
        return self._target_speed

    @property
    def first_frame_at(self) -> float | None:
        return self._first_frame_at

    @property
    def gain_db(self) -> float:
        """The gain asked for (what the keys step from); carries over from clip to clip."""
        return self._gain_db

    @property
    def applied_gain_db(self) -> float:
        """The gain this clip is heard at: normalisation + the step, capped at its headroom."""
        with self._lock:
            return self._applied_gain_locked()

    @property
    def gain_capped(self) -> bool:
        """True when the clip's peak holds the gain below what was asked (louder would clip)."""
        with self._lock:
            return self._requested_gain_locked() > self._levels.headroom_db

    # ----- extras for the TUI, doctor and tests ----------------------------------------------

    @property
    def audible_speed(self) -> float:
        """The speed the listener hears now; lags `speed` until its render is ready."""
        return self._audible_speed

    @property
    def duration(self) -> float:
        audio = self._audio
        return audio.duration_s if audio is not None else 0.0

    @property
    def last_error(self) -> str | None:
        """The latest device or render failure; playback carries on muted after one."""
        return self._last_error

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """Block until renders and device commands are done (tests, doctor; never the TUI)."""
        deadline = time.monotonic() + timeout
        for runner in (self._renderer, self._worker):
            if not runner.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def wait_drained(self, timeout: float = 2.0) -> bool:
        """Block until the device has consumed everything handed to it (tests, doctor)."""
        deadline = time.monotonic() + timeout
        if not self.wait_idle(timeout):
            return False
        while not self._device_drained():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return self.wait_idle(max(0.0, deadline - time.monotonic()))

    # ----- device hooks (device thread only) -------------------------------------------------

    def _device_play(self, segment: Segment) -> None:
        raise NotImplementedError

    def _device_stop(self) -> None:
        raise NotImplementedError

    def _device_close(self) -> None:
        self._device_stop()

    def _device_drained(self) -> bool:
        return True

    def _handed_to_device(self, segment: Segment) -> None:
        """Backends call this when a segment's first buffer is with the device."""
        if self._first_frame_at is not None:
            return
        now = time.monotonic()
        with self._lock:
            if segment.load_id == self._load_id and self._first_frame_at is None:
                self._first_frame_at = now

    def _call_on_device_thread(self, task: Callable[[], None]) -> None:
        """For device callbacks that must not call the device themselves (miniaudio's)."""
        self._worker.call(task)

    # ----- internals -------------------------------------------------------------------------

    def _position_locked(self, now: float) -> float:
        audio = self._audio
        if audio is None:
            return 0.0
        if not self._playing:
            return self._anchor_pos
        pos = self._anchor_pos + (now - self._anchor_t) * self._audible_speed
        if pos >= audio.duration_s:
            # Ran off the end: the device stops by itself, the clock stops here.
            self._playing = False
            self._anchor_pos = audio.duration_s
            return audio.duration_s
        return pos

    def _publish_locked(self) -> None:
        """Tell the device thread what should be heard now."""
        if self._closed:
            return
        self._generation += 1
        segment: Segment | None = None
        audio = self._audio
        if self._playing and audio is not None:
            render = self._renders[self._audible_speed]
            start = round(self._anchor_pos * audio.sample_rate / self._audible_speed)
            segment = Segment(
                samples=render,
                sample_rate=audio.sample_rate,
                channels=audio.channels,
                start_frame=min(max(0, start), int(render.shape[0])),
                speed=self._audible_speed,
                load_id=self._load_id,
                generation=self._generation,
            )
        self._worker.submit(segment)

    def _apply_segment(self, segment: Segment | None) -> None:
        if segment is None:
            self._device_stop()
        elif segment.start_frame < segment.samples.shape[0]:
            self._device_play(segment)
        else:
            self._device_stop()

    def _switch_speed_locked(self, speed: float) -> None:
        now = time.monotonic()
        pos = self._position_locked(now)
        if speed == self._audible_speed:
            return
        self._audible_speed = speed
        self._anchor_pos, self._anchor_t = pos, now
        if self._playing:
            self._publish_locked()

    def _schedule_render_locked(self, speed: float) -> None:
        audio, load_id = self._audio, self._load_id
        if audio is None or speed in self._renders or self._closed:
            return
        source = audio.samples

        def render() -> None:
            with self._lock:
                # Skip renders overtaken by a newer clip or a newer speed press.
                if load_id != self._load_id or speed != self._target_speed:
                    return
                if speed in self._renders:
                    return
                gain_id, applied = self._gain_id, self._applied_gain_locked()
            rendered = stretch(source, speed)
            gained = volume.apply_gain(rendered, applied)
            with self._lock:
                if load_id != self._load_id:
                    return
                self._raw_renders[speed] = rendered
                if gain_id != self._gain_id:
                    return  # a gain change queued behind this render rescales it
                self._renders[speed] = gained
                if speed == self._target_speed:
                    self._switch_speed_locked(speed)

        self._renderer.submit(render)

    def _requested_gain_locked(self) -> float:
        target = self._loudness_target
        normalise = 0.0 if target is None else volume.normalising_gain_db(self._levels, target)
        return normalise + self._gain_db

    def _applied_gain_locked(self) -> float:
        return volume.effective_gain_db(self._requested_gain_locked(), self._levels)

    def _change_gain(
        self, *, gain_db: float | None = None, target: float | None = None, set_target: bool = False
    ) -> None:
        with self._lock:
            before = self._applied_gain_locked()
            if gain_db is not None:
                self._gain_db = gain_db
            if set_target:
                self._loudness_target = target
            if self._audio is None or self._closed or self._applied_gain_locked() == before:
                return
            self._gain_id += 1
            gain_id, load_id = self._gain_id, self._load_id
        # Rescaling a 48 kHz stereo clip takes milliseconds: the render thread does it, after
        # any speed render already running (whose result it then rescales too).

        def regain() -> None:
            with self._lock:
                if gain_id != self._gain_id or load_id != self._load_id:
                    return
                applied, raws = self._applied_gain_locked(), dict(self._raw_renders)
            gained = {speed: volume.apply_gain(raw, applied) for speed, raw in raws.items()}
            with self._lock:
                if gain_id != self._gain_id or load_id != self._load_id:
                    return
                self._renders = gained
                now = time.monotonic()
                self._anchor_pos, self._anchor_t = self._position_locked(now), now
                if self._target_speed in gained and self._target_speed != self._audible_speed:
                    self._audible_speed = self._target_speed
                if self._playing:
                    self._publish_locked()
            self._renders_replaced()

        self._renderer.submit(regain)

    def _renders_replaced(self) -> None:
        """Hook: the gain changed every render of the loaded clip (the relay re-sends its 1x)."""

    def _record_error(self, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"
