"""`ClipHeader`: one line naming the clip on screen — #position, short id, duration, locale, badges.

Constructor: `ClipHeader(*, name, id, classes)`.

Reactives (each repaints the one line):
    position (int): the clip's number in this session (1-based; 0 shows no number).
    clip_id (str): the opaque clip id (the first 8 characters are shown). Empty: "waiting for a
        clip…".
    duration (float): seconds.
    locale (str): e.g. "en-US".
    late (bool): the lease expired; the submission will be stored as late ("late" badge).
    amending (bool): re-opened by undo for amendment ("amending" badge).

Methods:
    show_clip(position, clip_id, duration, locale, *, late=False, amending=False): set them all.
    clear(): back to "waiting for a clip…".

Messages: none (display only).

Component classes: clip-header--position, clip-header--id, clip-header--late,
clip-header--amending, clip-header--muted.
"""

from __future__ import annotations

from typing import ClassVar

from textual.content import Content
from textual.reactive import reactive
from textual.style import Style
from textual.widget import Widget

from api.text_safety import for_terminal
from widgets._format import clock

__all__ = ["SHORT_ID_LENGTH", "ClipHeader"]

SHORT_ID_LENGTH = 8


class ClipHeader(Widget):
    """The clip being annotated, in one line."""

    DEFAULT_CSS = """
    ClipHeader {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        & .clip-header--position {
            color: $text-accent;
            text-style: bold;
        }
        & .clip-header--id {
            text-style: bold;
        }
        & .clip-header--late {
            background: $warning;
            color: $background;
            text-style: bold;
        }
        & .clip-header--amending {
            background: $accent;
            color: $background;
            text-style: bold;
        }
        & .clip-header--muted {
            color: $text-muted;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "clip-header--position",
        "clip-header--id",
        "clip-header--late",
        "clip-header--amending",
        "clip-header--muted",
    }

    position: reactive[int] = reactive(0)
    """Number of the clip in this session (1-based); 0 for none."""
    clip_id: reactive[str] = reactive("")
    """Opaque clip id; only its first 8 characters are shown."""
    duration: reactive[float] = reactive(0.0)
    """Clip length in seconds."""
    locale: reactive[str] = reactive("")
    """The clip's locale, e.g. "en-US"."""
    late: reactive[bool] = reactive(False)
    """The lease expired before submit: the annotation will be stored as late."""
    amending: reactive[bool] = reactive(False)
    """The clip was re-opened (undo) to amend its submitted annotation."""

    def show_clip(
        self,
        position: int,
        clip_id: str,
        duration: float,
        locale: str,
        *,
        late: bool = False,
        amending: bool = False,
    ) -> None:
        self.position = position
        self.clip_id = clip_id
        self.duration = duration
        self.locale = locale
        self.late = late
        self.amending = amending

    def clear(self) -> None:
        self.show_clip(0, "", 0.0, "")

    def render(self) -> Content:
        muted = self.get_visual_style("clip-header--muted", partial=True)
        if not self.clip_id:
            return Content.styled("waiting for a clip…", muted)
        parts: list[Content | str | tuple[str, str | Style]] = []
        if self.position > 0:
            parts += [
                (f"#{self.position}", self.get_visual_style("clip-header--position", partial=True)),
                "  ",
            ]
        parts += [
            ("clip ", muted),
            (
                self.clip_id[:SHORT_ID_LENGTH],
                self.get_visual_style("clip-header--id", partial=True),
            ),
        ]
        if self.duration > 0:  # 0: not known (a reopened submission whose audio is gone)
            parts += ["  ", clock(self.duration)]
        if self.locale:
            parts += ["  ", for_terminal(self.locale)]
        if self.late:
            parts += ["  ", (" late ", self.get_visual_style("clip-header--late"))]
        if self.amending:
            parts += [
                "  ",
                (" amending ", self.get_visual_style("clip-header--amending")),
            ]
        return Content.assemble(*parts)
