"""PlayerBar: waveform, playhead, time/speed text, notices."""

from __future__ import annotations

from textual.strip import Strip

from tests.widgets.snapshot_apps.hosts import PlayerBarApp
from widgets import PlayerBar
from widgets._format import clock, speed
from widgets.player_bar import resample_peaks

SIZE = (80, 24)


def text(strip: Strip) -> str:
    return "".join(segment.text for segment in strip)


def test_formatters() -> None:
    assert [clock(0), clock(7.49), clock(83.26), clock(-1)] == [
        "0:00.0",
        "0:07.4",
        "1:23.2",
        "0:00.0",
    ]
    assert [speed(1.0), speed(1.25), speed(0.5), speed(2)] == ["1×", "1.25×", "0.5×", "2×"]


def test_resampling_keeps_peaks() -> None:
    envelope = [0.0] * 100
    envelope[57] = 0.9  # a click narrower than a column must still show
    peaks = resample_peaks(envelope, 10)
    assert len(peaks) == 10 and peaks[5] == 0.9 and sum(peaks) == 0.9
    assert resample_peaks([0.2, 1.5], 4) == [0.2, 0.2, 1.0, 1.0]
    assert resample_peaks([], 3) == [0.0, 0.0, 0.0]


async def test_info_line_shows_state_time_speed_and_status() -> None:
    app = PlayerBarApp()
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one("#playing", PlayerBar)
        await pilot.pause()
        info = text(bar.render_line(2))
        assert info.startswith("▶ 0:03.2 / 0:07.5  1.25×  muted: no audio device")
        bar.playing = False
        bar.position = 7.5
        bar.speed = 0.5
        bar.status = ""
        info = text(bar.render_line(2))
        assert info.rstrip() == "‖ 0:07.5 / 0:07.5  0.5×"
        decoding = app.query_one("#decoding", PlayerBar)
        assert "decoding…" in text(decoding.render_line(2))


async def test_playhead_moves_and_splits_played_from_unplayed() -> None:
    app = PlayerBarApp()
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one("#playing", PlayerBar)
        await pilot.pause()
        width = bar.content_size.width
        bar.position = 0.0
        assert bar.playhead_column == 0
        bar.position = 3.75
        assert bar.playhead_column == width // 2
        row = bar.render_line(1)
        assert text(row)[width // 2] == "┃"
        styles = [segment.style for segment in row]
        played, unplayed = styles[0], styles[-1]
        assert played is not None and unplayed is not None and played.color != unplayed.color
        # The wave is drawn across the whole width, also where it is silent (a thin base line).
        assert len(text(row)) == width and " " not in text(row)


async def test_load_resets_for_the_next_clip() -> None:
    app = PlayerBarApp()
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one("#playing", PlayerBar)
        bar.load([0.75] * 10, 2.0)
        await pilot.pause()
        assert (bar.position, bar.duration, bar.playing, bar.status) == (0.0, 2.0, False, "")
        # 0.75 of two rows: the lower row full, the upper one half.
        assert set(text(bar.render_line(0))[1:]) == {"▄"}
        assert set(text(bar.render_line(1))[1:]) == {"█"}
