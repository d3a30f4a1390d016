"""The annotator's widgets: display and input only, no IO. Each module's docstring is its API."""

from widgets.clip_header import ClipHeader
from widgets.flag_panel import FlagPanel
from widgets.intent_picker import IntentPicker
from widgets.player_bar import PlayerBar
from widgets.stats_bar import StatsBar
from widgets.transcript import TranscriptEditor, TranscriptField

__all__ = [
    "ClipHeader",
    "FlagPanel",
    "IntentPicker",
    "PlayerBar",
    "StatsBar",
    "TranscriptEditor",
    "TranscriptField",
]
