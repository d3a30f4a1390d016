"""`PlayerBar`: the clip's waveform with a moving playhead, elapsed/total, speed and a notice.

The widget only draws; the App polls the player (10–20×/s) and sets the reactives. Every reactive
repaints without a layout pass, so a playhead update costs one three-line render.

Reactives:
    envelope (Sequence[float]): peaks in 0..1, any length (resampled to the width; computed from
        the decoded samples by `annotator.audio.decode.envelope`). Empty: a flat line.
    position (float): playhead, seconds of clip time.
    duration (float): clip length in seconds.
    speed (float): playback speed, shown as "1.25×".
    gain (str): the volume boost as the player describes it ("+6 dB", "+4.2 dB max"), shown as
        "vol +6 dB" after the speed. Empty: nothing shown (0 dB).
    playing (bool): ▶ while playing, ‖ while paused.
    status (str): a short notice shown on the info line, e.g. "muted: no audio device — see
        annotator doctor", "decoding…", "broken audio: …". Empty for none.

Methods:
    load(envelope, duration): show a new clip (playhead to 0, paused, status cleared).

Messages: none (display only).

Component classes (restyle in CSS): player-bar--played, player-bar--unplayed,
player-bar--playhead, player-bar--time, player-bar--speed, player-bar--status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from api.text_safety import for_terminal
from widgets._format import clock
from widgets._format import speed as format_speed

__all__ = ["PlayerBar"]

# Bottom-aligned eighth blocks: index n fills n/8 of the cell from the bottom.
_RISING = " ▁▂▃▄▅▆▇█"
_WAVE_ROWS = 2


def resample_peaks(envelope: Sequence[float], columns: int) -> list[float]:
    """One peak per column: the max of the envelope values that fall into it (peaks must survive
    downsampling, or a short click disappears), the nearest value when upsampling."""
    n = len(envelope)
    if columns <= 0:
        return []
    if n == 0:
        return [0.0] * columns
    peaks: list[float] = []
    for column in range(columns):
        lo = column * n // columns
        hi = max(lo + 1, (column + 1) * n // columns)
        peaks.append(max(envelope[lo:hi]))
    return [min(1.0, max(0.0, p)) for p in peaks]


def _levels(peak: float) -> int:
    """Bar height in eighths of a cell over the two wave rows (1..16).

    At least one eighth, so silence still draws the time axis as a thin line.
    """
    return max(1, min(8 * _WAVE_ROWS, round(peak * 8 * _WAVE_ROWS)))


class PlayerBar(Widget):
    """Waveform + playhead (a two-row bar graph, 16 levels) over an info line."""

    DEFAULT_CSS = """
    PlayerBar {
        height: 3;
        padding: 0 1;
        background: $surface;
    }
    PlayerBar > .player-bar--played {
        color: $accent;
    }
    PlayerBar > .player-bar--unplayed {
        color: $foreground-muted;
    }
    PlayerBar > .player-bar--playhead {
        color: $warning;
        text-style: bold;
    }
    PlayerBar > .player-bar--time {
        text-style: bold;
    }
    PlayerBar > .player-bar--speed {
        color: $text-accent;
    }
    PlayerBar > .player-bar--status {
        color: $text-warning;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "player-bar--played",
        "player-bar--unplayed",
        "player-bar--playhead",
        "player-bar--time",
        "player-bar--speed",
        "player-bar--status",
    }

    envelope: reactive[Sequence[float]] = reactive((), layout=False)
    """Peaks in 0..1 (any length; resampled to the width)."""
    position: reactive[float] = reactive(0.0, layout=False)
    """Playhead in seconds of clip time."""
    duration: reactive[float] = reactive(0.0, layout=False)
    """Clip length in seconds."""
    speed: reactive[float] = reactive(1.0, layout=False)
    """Playback speed (1.0 = normal)."""
    gain: reactive[str] = reactive("", layout=False)
    """The volume boost, e.g. "+6 dB"; empty at 0 dB."""
    playing: reactive[bool] = reactive(False, layout=False)
    """Whether audio is playing (▶) or paused (‖)."""
    status: reactive[str] = reactive("", layout=False)
    """A short notice on the info line ("decoding…", "muted: …"); empty for none."""

    def __init__(
        self,
        envelope: Sequence[float] = (),
        duration: float = 0.0,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._peaks_cache: tuple[int, list[int]] | None = None
        self.set_reactive(PlayerBar.envelope, tuple(envelope))
        self.set_reactive(PlayerBar.duration, duration)

    def load(self, envelope: Sequence[float], duration: float) -> None:
        """Show a new clip: its waveform, playhead at 0, paused, no notice."""
        self.envelope = tuple(envelope)
        self.duration = duration
        self.position = 0.0
        self.playing = False
        self.status = ""

    def watch_envelope(self) -> None:
        self._peaks_cache = None

    @property
    def playhead_column(self) -> int | None:
        """The waveform column the playhead is in (None before a clip with a duration)."""
        width = self.content_size.width
        if self.duration <= 0 or width <= 0:
            return None
        fraction = min(1.0, max(0.0, self.position / self.duration))
        return min(width - 1, int(fraction * width))

    def _column_levels(self, width: int) -> list[int]:
        # Resampling is the only per-width cost: cache it so playhead frames only restyle.
        if self._peaks_cache is None or self._peaks_cache[0] != width:
            peaks = resample_peaks(self.envelope, width)
            self._peaks_cache = (width, [_levels(p) for p in peaks])
        return self._peaks_cache[1]

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if y < _WAVE_ROWS:
            return self._render_wave_row(y, width)
        if y == _WAVE_ROWS:
            return self._render_info_row(width)
        return Strip.blank(width, self.rich_style)

    def _render_wave_row(self, y: int, width: int) -> Strip:
        base = self.rich_style
        played = base + self.get_component_rich_style("player-bar--played", partial=True)
        unplayed = base + self.get_component_rich_style("player-bar--unplayed", partial=True)
        playhead = base + self.get_component_rich_style("player-bar--playhead", partial=True)
        head = self.playhead_column
        # Row 0 is the upper half of each bar; only bottom-aligned blocks are used, which every
        # terminal font (and the SVG export) draws flush with the cell.
        floor = 8 * (_WAVE_ROWS - 1 - y)
        segments: list[Segment] = []
        run: list[str] = []
        run_style: Style | None = None

        def flush() -> None:
            if run and run_style is not None:
                segments.append(Segment("".join(run), run_style))
            run.clear()

        for column, level in enumerate(self._column_levels(width)):
            if column == head:
                flush()
                segments.append(Segment("┃", playhead))
                run_style = None
                continue
            style = played if head is not None and column < head else unplayed
            if style != run_style:
                flush()
                run_style = style
            run.append(_RISING[min(8, max(0, level - floor))])
        flush()
        return Strip(segments).adjust_cell_length(width, base)

    def _render_info_row(self, width: int) -> Strip:
        base = self.rich_style
        time_style = base + self.get_component_rich_style("player-bar--time", partial=True)
        speed_style = base + self.get_component_rich_style("player-bar--speed", partial=True)
        status_style = base + self.get_component_rich_style("player-bar--status", partial=True)
        glyph = "▶" if self.playing else "‖"
        position = min(self.position, self.duration) if self.duration > 0 else self.position
        segments = [
            Segment(f"{glyph} ", base),
            Segment(f"{clock(position)} / {clock(self.duration)}", time_style),
            Segment("  ", base),
            Segment(format_speed(self.speed), speed_style),
        ]
        if self.gain:
            segments += [Segment("  ", base), Segment(f"vol {self.gain}", speed_style)]
        if self.status:
            segments += [Segment("  ", base), Segment(for_terminal(self.status), status_style)]
        return Strip(segments).adjust_cell_length(width, base)
