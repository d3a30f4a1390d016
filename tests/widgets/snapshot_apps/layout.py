"""Every widget laid out the way the App will: header, player, transcript, picker | flags, stats.

Look at it by hand: `.venv/bin/python -m tests.widgets.snapshot_apps.layout`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual.app import App, ComposeResult
from textual.containers import Horizontal

from tests.widgets.snapshot_apps.hosts import FLAG_KEYS, INDEX, RECENT, TAXONOMY, demo_envelope
from widgets import ClipHeader, FlagPanel, IntentPicker, PlayerBar, StatsBar, TranscriptField

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


class LayoutApp(App[None]):
    CSS = """
    #lower { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield ClipHeader()
        yield PlayerBar(demo_envelope(), 7.5)
        yield TranscriptField(lint=INDEX.lint_transcript)
        with Horizontal(id="lower"):
            yield IntentPicker(TAXONOMY.intents, frequent=RECENT)
            yield FlagPanel(TAXONOMY.flags)
        yield StatsBar(clock=lambda: NOW)

    def on_mount(self) -> None:
        self.query_one(ClipHeader).show_clip(12, "3f9a2c1d7e6b5a40", 7.5, "en-US", late=True)
        player = self.query_one(PlayerBar)
        player.position = 3.2
        player.playing = True
        player.speed = 1.25
        self.query_one(TranscriptField).load("turn off the lights in the [nois] kitchen")
        flags = self.query_one(FlagPanel)
        flags.set_key_hints(FLAG_KEYS)
        stats = self.query_one(StatsBar)
        stats.session_count = 12
        stats.today_count = 412
        stats.clips_per_hour = 118
        stats.median_seconds = 27.4
        stats.shift_started_at = NOW - timedelta(hours=4)
        stats.prefetched = 3
        stats.backend = "miniaudio"
        self.query_one(IntentPicker).focus()


if __name__ == "__main__":
    LayoutApp().run()
