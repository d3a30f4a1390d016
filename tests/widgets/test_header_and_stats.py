"""ClipHeader and StatsBar: what the one-line bars say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.widgets.snapshot_apps.hosts import HeaderAndStatsApp
from widgets import ClipHeader, StatsBar
from widgets.stats_bar import pace

SIZE = (80, 24)
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def test_pace_against_elapsed_shift_time() -> None:
    common = {"clips_per_hour": 0.0, "target": 1000, "shift_hours": 9.0}
    assert pace(today_count=412, elapsed_hours=4.0, **common) == (-1, "−32 behind")
    assert pace(today_count=460, elapsed_hours=4.0, **common) == (1, "+16 ahead")
    # Within 1% of the target counts as on pace.
    assert pace(today_count=450, elapsed_hours=4.0, **common) == (0, "on pace")
    assert pace(today_count=444, elapsed_hours=4.0, **common) == (0, "on pace")
    # After the shift the whole target is expected.
    assert pace(today_count=995, elapsed_hours=12.0, **common) == (0, "on pace")
    assert pace(today_count=0, elapsed_hours=-1.0, **common) == (0, "on pace")


def test_pace_from_rate_without_a_shift_start() -> None:
    common = {"today_count": 0, "target": 900, "shift_hours": 9.0, "elapsed_hours": None}
    assert pace(clips_per_hour=100.0, **common) == (0, "on pace")
    assert pace(clips_per_hour=88.0, **common) == (-1, "−12/h behind")
    assert pace(clips_per_hour=120.0, **common) == (1, "+20/h ahead")


async def test_header_names_the_clip() -> None:
    app = HeaderAndStatsApp()
    async with app.run_test(size=SIZE) as pilot:
        header = app.query_one(ClipHeader)
        assert str(header.render()) == "waiting for a clip…"
        header.show_clip(12, "3f9a2c1d7e6b5a40", 7.5, "en-US", late=True, amending=True)
        await pilot.pause()
        assert str(header.render()) == "#12  clip 3f9a2c1d  0:07.5  en-US   late    amending "
        # A submission reopened from the history list after its audio left memory: its length
        # is not known, and the header said "0:00.0".
        header.show_clip(0, "3f9a2c1d7e6b5a40", 0.0, "", amending=True)
        await pilot.pause()
        assert str(header.render()) == "clip 3f9a2c1d   amending "


async def test_stats_line_and_offline_outbox() -> None:
    app = HeaderAndStatsApp()
    async with app.run_test(size=SIZE) as pilot:
        stats = app.query_one(StatsBar)
        stats._clock = lambda: NOW
        stats.session_count = 12
        stats.today_count = 412
        stats.clips_per_hour = 118.4
        stats.median_seconds = 27.4
        stats.shift_started_at = NOW - timedelta(hours=4)
        stats.prefetched = 3
        await pilot.pause()
        # 78 columns: everything but the median fits.
        assert str(stats.render()) == (
            "12 this session · today 412/1000 −32 behind · 118/h · 3 ready · ● online"
        )
        stats.styles.width = 100
        await pilot.pause()
        assert str(stats.render()) == (
            "12 this session · today 412/1000 −32 behind · 118/h · 27s/clip · 3 ready · ● online"
        )
        stats.styles.width = "1fr"

        stats.online = False
        stats.outbox = 4
        stats.backend = "miniaudio"
        await pilot.pause()
        line = str(stats.render())
        assert "○ offline outbox 4" in line
        # Too narrow for everything: the backend and median go first, pace and state stay.
        assert "miniaudio" not in line and "/clip" not in line
        assert "today 412/1000" in line


async def test_insecure_is_shown_however_narrow() -> None:
    app = HeaderAndStatsApp()
    async with app.run_test(size=SIZE) as pilot:
        stats = app.query_one(StatsBar)
        stats.session_count = 3
        stats.backend = "miniaudio"
        await pilot.pause()
        assert "INSECURE" not in str(stats.render())
        stats.insecure = True
        stats.styles.width = 40
        await pilot.pause()
        line = str(stats.render())
        assert "⚠ INSECURE http" in line
        assert "miniaudio" not in line  # other parts give way first
