"""Minimal host Apps, one per widget, shared by the Pilot tests and the snapshot tests.

Each host records every message its widget posts in `messages`, so tests can assert on them.
"""

from __future__ import annotations

import math
from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.message import Message

from api.taxonomy import TaxonomyIndex, load_default_taxonomy
from widgets import ClipHeader, FlagPanel, IntentPicker, PlayerBar, StatsBar, TranscriptField
from widgets.transcript import TranscriptEditor

TAXONOMY = load_default_taxonomy()
INDEX = TaxonomyIndex(TAXONOMY)
FLAG_KEYS = {flag.id: f"F{n}" for n, flag in enumerate(TAXONOMY.flags, start=1)}
RECENT = ["weather_query", "iot_hue_lightoff", "alarm_set", "play_music"]  # on digits 4–7


def demo_envelope(n: int = 400) -> list[float]:
    """A deterministic speech-like envelope: syllable bumps under a phrase contour."""
    return [
        abs(math.sin(i / 7.0))
        * (0.35 + 0.6 * math.sin(math.pi * i / n))
        * (0.6 + 0.4 * math.cos(i / 23))
        for i in range(n)
    ]


class _Recorder(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Message] = []

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


class PlayerBarApp(_Recorder):
    """A playing clip (muted notice) above a clip still decoding."""

    def compose(self) -> ComposeResult:
        yield PlayerBar(demo_envelope(), 7.5, id="playing")
        yield PlayerBar(id="decoding")

    def on_mount(self) -> None:
        playing = self.query_one("#playing", PlayerBar)
        playing.position = 3.25
        playing.playing = True
        playing.speed = 1.25
        playing.status = "muted: no audio device — see annotator doctor"
        self.query_one("#decoding", PlayerBar).status = "decoding…"


class IntentPickerApp(_Recorder):
    def compose(self) -> ComposeResult:
        yield IntentPicker(TAXONOMY.intents, frequent=RECENT)

    def on_mount(self) -> None:
        self.query_one(IntentPicker).focus()

    @on(IntentPicker.Picked)
    def _record(self, message: IntentPicker.Picked) -> None:
        self.messages.append(message)


class FlagPanelApp(_Recorder):
    def compose(self) -> ComposeResult:
        yield FlagPanel(TAXONOMY.flags)

    def on_mount(self) -> None:
        self.query_one(FlagPanel).set_key_hints(FLAG_KEYS)

    @on(FlagPanel.Changed)
    def _record(self, message: FlagPanel.Changed) -> None:
        self.messages.append(message)


class TranscriptApp(_Recorder):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._text = text

    def compose(self) -> ComposeResult:
        yield TranscriptField(lint=INDEX.lint_transcript)

    def on_mount(self) -> None:
        field = self.query_one(TranscriptField)
        if self._text:
            field.load(self._text)
        field.focus()

    @on(TranscriptEditor.Edited)
    def _record(self, message: TranscriptEditor.Edited) -> None:
        self.messages.append(message)


class HeaderAndStatsApp(_Recorder):
    def compose(self) -> ComposeResult:
        yield ClipHeader()
        yield StatsBar()
