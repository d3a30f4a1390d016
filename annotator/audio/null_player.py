"""A muted player: no device, but the playhead moves so the annotator can still work."""

from __future__ import annotations

from annotator.audio.player import BasePlayer, Segment


class NullPlayer(BasePlayer):
    """Used when there is no audio device (or `--audio none`); everything but the sound works."""

    name = "none"

    def _device_play(self, segment: Segment) -> None:
        # Nothing to hand over; stamping the time keeps the latency benchmark meaningful.
        self._handed_to_device(segment)

    def _device_stop(self) -> None:
        pass
