"""Below 80×24 the annotate screen cannot show its fields: say so instead of drawing a mess."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Static

MIN_WIDTH = 80
MIN_HEIGHT = 24


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class TooSmallScreen(Screen[None]):
    """Shown over everything while the terminal is too small; popped when it grows again."""

    DEFAULT_CSS = """
    TooSmallScreen { background: $background; }
    TooSmallScreen Static { width: auto; text-align: center; color: $text-warning; }
    """

    def __init__(self, size: Size) -> None:
        super().__init__()
        self._size_now = size

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(id="too-small-message")

    def on_mount(self) -> None:
        self._update()

    def on_resize(self, event: events.Resize) -> None:
        self.show_size(event.size)

    def show_size(self, size: Size) -> None:
        """The terminal's size now (the App passes it on: its own `size` lags one event)."""
        self._size_now = size
        if self.is_mounted:
            self._update()

    def _update(self) -> None:
        w, h = self._size_now
        self.query_one(Static).update(
            f"Please enlarge the terminal\n\nneeds {MIN_WIDTH}×{MIN_HEIGHT}, now {w}×{h}\n"
            "Your work is kept."
        )
