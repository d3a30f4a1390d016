"""simpleaudio backend: one `play_buffer` per play/seek, from the segment's offset.

simpleaudio opens the ALSA "default" PCM for every buffer and writes it from its own thread, so
pause is stop-and-remember (the base class remembers) and seek is stop-and-start-again.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any, cast

from annotator.audio.player import BackendUnavailableError, BasePlayer, Segment

BYTES_PER_SAMPLE = 2
# A hw: device is exclusive: the old stream must be closed before the next one opens.
_STOP_WAIT_S = 0.25


def import_simpleaudio() -> ModuleType:
    try:
        import simpleaudio
    except ImportError as exc:
        raise BackendUnavailableError(
            f"simpleaudio is not installed ({exc}); it needs Python < 3.12 and the ALSA headers"
            " (libasound2-dev) — use --audio miniaudio"
        ) from exc
    return cast(ModuleType, simpleaudio)


class SimpleaudioPlayer(BasePlayer):
    name = "simpleaudio"

    def __init__(self) -> None:
        self._sa = import_simpleaudio()
        self._play_obj: Any = None
        super().__init__()

    def _device_play(self, segment: Segment) -> None:
        self._device_stop()
        # A row slice of a C-contiguous (frames, channels) array is contiguous: no copy here,
        # simpleaudio copies it into its own buffer.
        view = segment.samples[segment.start_frame :]
        self._play_obj = self._sa.play_buffer(
            view, segment.channels, BYTES_PER_SAMPLE, segment.sample_rate
        )
        self._handed_to_device(segment)

    def _device_stop(self) -> None:
        play_obj, self._play_obj = self._play_obj, None
        if play_obj is None:
            return
        play_obj.stop()
        deadline = time.monotonic() + _STOP_WAIT_S
        while play_obj.is_playing() and time.monotonic() < deadline:
            time.sleep(0.001)

    def _device_drained(self) -> bool:
        play_obj = self._play_obj
        return play_obj is None or not play_obj.is_playing()
