"""The annotate screen's volume keys (issue 14 item 6) and the welfare rule that raising an
escalation flag stops the sound (issue 11), through the real TUI against the real server."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp, Services
from annotator.audio.player import BasePlayer
from tests.fixtures.server import LiveServer, wav_bytes
from tests.tui.helpers import services_for, wait_for_clip, wait_until

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


@pytest.fixture
async def services(live_server: LiveServer, tmp_path: Path) -> AsyncIterator[Services]:
    # 0.2 of full scale (14 dB of headroom), long enough to still be playing when checked.
    paths = [tmp_path / f"clip{i}.wav" for i in range(3)]
    for i, path in enumerate(paths):
        path.write_bytes(wav_bytes(i, seconds=8.0))
    live_server.ingest(paths)
    services = services_for(live_server)
    services.start()
    try:
        yield services
    finally:
        services.shutdown()


def info_line(app: AnnotatorApp) -> str:
    bar = app.screen.query_one("PlayerBar")
    return "".join(seg.text for seg in bar.render_line(bar.size.height - 1))


async def test_gain_keys_step_six_db_show_it_and_stop_at_the_clip_peak(
    services: Services,
) -> None:
    app = AnnotatorApp(services)
    player = services.player
    assert isinstance(player, BasePlayer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_clip(pilot, app)
        assert "vol" not in info_line(app)
        await pilot.press("alt+shift+up")
        await wait_until(pilot, lambda: player.applied_gain_db == 6.0)
        await wait_until(pilot, lambda: "vol +6 dB" in info_line(app))
        await pilot.press("alt+shift+up", "alt+shift+up")  # 18 dB asked; the clip allows 14
        await wait_until(pilot, lambda: player.gain_capped)
        assert player.applied_gain_db == pytest.approx(20 * math.log10(32767 / 6554), abs=0.1)
        await wait_until(pilot, lambda: "vol +14 dB max" in info_line(app))
        await pilot.press("alt+shift+up")  # refused with a notice: louder would clip
        await pilot.pause()
        assert any("without clipping" in str(n.message) for n in app._notifications)
        await pilot.press("alt+shift+down")
        await wait_until(pilot, lambda: "vol +8 dB" in info_line(app))


async def test_raising_an_escalation_flag_stops_the_sound(services: Services) -> None:
    app = AnnotatorApp(services)
    player = services.player
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_clip(pilot, app)
        await wait_until(pilot, lambda: player.playing)
        await pilot.press("alt+shift+p")  # pii: not an escalation flag, the sound goes on
        await pilot.pause()
        assert player.playing
        await pilot.press("alt+shift+d")  # distress
        await pilot.pause()
        assert not player.playing
        await pilot.pause(0.3)
        assert not player.playing  # and nothing starts it again by itself


async def test_normalise_loudness_setting_boosts_a_quiet_clip_to_the_target(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotator.audio import gain

    path = tmp_path / "quiet.wav"
    path.write_bytes(wav_bytes(0, seconds=2.0))  # a 0.2 tone: about -17 dBFS RMS
    live_server.ingest([path])
    monkeypatch.setenv("ANNOTATOR_NORMALISE_LOUDNESS", "true")
    monkeypatch.setenv("ANNOTATOR_LOUDNESS_TARGET", "-12")
    services = services_for(live_server)
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            assert screen.current is not None and screen.current.audio is not None
            levels = screen.current.audio.levels
            expected = gain.effective_gain_db(gain.normalising_gain_db(levels, -12.0), levels)
            assert expected > 4
            await wait_until(
                pilot, lambda: services.player.applied_gain_db == pytest.approx(expected)
            )
            await wait_until(pilot, lambda: "vol +" in info_line(app))
    finally:
        services.shutdown()
