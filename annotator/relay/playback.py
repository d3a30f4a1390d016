"""The relay's side of playback: PCM arriving over the wire, handed to a local player.

The client renders speed changes itself (the shared WSOLA) and streams each render; the relay
only ever plays a render at 1x from a frame. Every PLAY reloads the render into the local player:
loading is cheap (no copy) and resets `first_frame_at`, so each PLAY gets its own device stamp for
the STARTED report.

A PLAY waits until the frames it needs are here. simpleaudio copies its whole buffer when it
starts, so it needs the rest of the render; miniaudio (and the muted player) read as they go, so
a short prebuffer is enough and the remainder streams in behind the playhead.

Audio lives only in these numpy arrays: nothing is ever written to disk.

Two playbacks share the relay's one player: the annotator's, and `annotator doctor`'s probe
(`yields_to` the annotator's). Whichever started last owns the device; the probe starts only
while the annotator's is silent, and the annotator's takes the device back on its next PLAY. A
playback that does not own the device neither stops it nor reports its playhead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from annotator.audio.decode import DecodedAudio, Int16Frames
from annotator.audio.player import Player
from annotator.relay.protocol import ProtocolViolation
from annotator.relay.ranges import Ranges

log = logging.getLogger("annotator.relay")

# Backends that read the buffer while playing; anything else gets the whole tail first.
_STREAMING_BACKENDS = frozenset({"miniaudio", "none"})
PREBUFFER_S = 0.3
# A 15-minute clip at 48 kHz stereo is ~173 MB; renders beyond this are not clips.
MAX_RENDER_BYTES = 200 * 1024 * 1024
# The current clip at a few speeds; older ones are dropped by the client (DROP) or here.
MAX_RENDERS = 6
MAX_RATE = 192_000


@dataclass(eq=False)
class _Render:
    samples: Int16Frames
    rate: int
    channels: int
    received: Ranges = field(default_factory=Ranges)

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])


@dataclass(frozen=True)
class _Play:
    generation: int
    render_id: int
    start: int
    received_at: float


@dataclass(frozen=True)
class StartReport:
    generation: int
    first_frame_at: float
    delay: float


class _Device:
    """The player two playbacks share, and which of them started it last."""

    def __init__(self, player: Player) -> None:
        self.player = player
        self.lock = threading.Lock()  # one start or stop at a time, whoever asks
        self.owner: RelayPlayback | None = None


class RelayPlayback:
    """Thread-safe; called by the session's reader thread, polled by its reporter thread."""

    def __init__(self, player: Player, *, yields_to: RelayPlayback | None = None) -> None:
        self._device: _Device = yields_to._device if yields_to is not None else _Device(player)
        self._yields_to = yields_to
        self._player = player
        self._whole_tail = player.name not in _STREAMING_BACKENDS
        self._lock = threading.Lock()
        self._device_lock = self._device.lock
        self._renders: OrderedDict[int, _Render] = OrderedDict()
        self._pending: _Play | None = None
        self._current: _Play | None = None
        self._awaiting_stamp: _Play | None = None
        self.on_change: Callable[[], None] = lambda: None

    # ----- messages ---------------------------------------------------------------------------

    def load(self, render_id: int, rate: int, channels: int, frames: int) -> None:
        if not (0 < rate <= MAX_RATE and channels in (1, 2) and frames >= 0):
            raise ProtocolViolation(f"unplayable render: {rate} Hz, {channels} channels")
        if frames * channels * 2 > MAX_RENDER_BYTES:
            raise ProtocolViolation(f"render of {frames} frames is larger than any clip")
        with self._lock:
            self._renders.pop(render_id, None)
            samples = np.zeros((frames, channels), dtype=np.int16)
            self._renders[render_id] = _Render(samples, rate, channels)
            while len(self._renders) > MAX_RENDERS:
                self._renders.popitem(last=False)

    def pcm(self, render_id: int, first: int, data: bytes) -> None:
        with self._lock:
            render = self._renders.get(render_id)
            if render is None:
                return  # dropped while in flight
            if len(data) % (2 * render.channels):
                raise ProtocolViolation("PCM chunk is not a whole number of frames")
            count = len(data) // (2 * render.channels)
            if first < 0 or first + count > render.frames:
                raise ProtocolViolation("PCM chunk outside its render")
            chunk = np.frombuffer(data, dtype="<i2").reshape(count, render.channels)
            render.samples[first : first + count] = chunk
            render.received.add(first, first + count)
            pending = self._pending
        if pending is not None and pending.render_id == render_id:
            self._try_start()

    def play(self, generation: int, render_id: int, start: int) -> None:
        with self._lock:
            if render_id not in self._renders:
                raise ProtocolViolation(f"PLAY of unknown render {render_id}")
            self._pending = _Play(generation, render_id, start, time.monotonic())
        self._try_start()

    def stop(self, generation: int) -> None:
        with self._device_lock:
            with self._lock:
                self._pending = None
                self._current = None
                self._awaiting_stamp = None
            if self._device.owner is self:
                self._device.owner = None
                self._player.stop()
        self.on_change()

    def drop(self, render_id: int) -> None:
        with self._lock:
            self._renders.pop(render_id, None)

    def reset(self) -> None:
        """The client went away: silence, and forget its audio."""
        self.stop(0)
        with self._lock:
            self._renders.clear()

    # ----- reports ----------------------------------------------------------------------------

    def take_start_report(self) -> StartReport | None:
        """The device stamp of the latest PLAY, once (None until the device has it)."""
        with self._lock:
            play = self._awaiting_stamp
        if play is None or self._device.owner is not self:
            return None
        stamp = self._player.first_frame_at
        if stamp is None:
            return None
        with self._lock:
            if self._awaiting_stamp is not play:
                return None
            self._awaiting_stamp = None
        return StartReport(play.generation, stamp, stamp - play.received_at)

    def device_error(self) -> str | None:
        """The local player's latest failure, if it keeps one (the shared base does)."""
        error = getattr(self._player, "last_error", None)
        return error if isinstance(error, str) else None

    @property
    def awaiting_stamp(self) -> bool:
        return self._awaiting_stamp is not None

    @property
    def waiting_for_device(self) -> bool:
        """A PLAY is held back because the device is the annotator's (probes only)."""
        return self._yields_to is not None and self._pending is not None

    @property
    def busy(self) -> bool:
        """Is this playback using the device, or about to?"""
        with self._lock:
            if self._pending is not None:
                return True
            current = self._current
        return current is not None and self._device.owner is self and self._player.playing

    def retry(self) -> None:
        """Start a held-back PLAY if the device has become free (the reporter polls this)."""
        if self._pending is not None:
            self._try_start()

    def position(self) -> tuple[int, int, bool] | None:
        """(generation, render frame, playing) of what the device plays now, if anything."""
        with self._lock:
            current = self._current
            render = self._renders.get(current.render_id) if current else None
            starting = self._awaiting_stamp is not None
        # Until the device has the first frame, "not playing" would read as "finished".
        if current is None or render is None or starting or self._device.owner is not self:
            return None
        playing = self._player.playing
        return current.generation, round(self._player.position * render.rate), playing

    # ----- internals --------------------------------------------------------------------------

    def _try_start(self) -> None:
        # One start at a time, and a stop never interleaves with one: the reports must not see
        # the player between load() and seek() (it would read as "at 0").
        with self._device_lock:
            if self._yields_to is not None and self._yields_to.busy:
                return  # the annotator's sound first; `retry` tries again
            with self._lock:
                play = self._pending
                render = self._renders.get(play.render_id) if play else None
                if play is None or render is None:
                    return
                start = min(max(0, play.start), render.frames)
                need_end = render.frames
                if not self._whole_tail:
                    need_end = min(render.frames, start + round(PREBUFFER_S * render.rate))
                if not render.received.covers(start, need_end):
                    return
                self._pending = None
                self._current = self._awaiting_stamp = None
            audio = DecodedAudio(
                samples=render.samples,
                sample_rate=render.rate,
                channels=render.channels,
                duration_s=render.frames / render.rate,
            )
            self._device.owner = self
            self._player.load(audio)
            self._player.seek(start / render.rate)
            self._player.play()
            with self._lock:
                self._current = self._awaiting_stamp = play
        self.on_change()
