"""Volume (issue 14 item 6): gain steps capped at the clip's peak, loudness normalisation, and
the bytes the sound card receives (ALSA's file plugin) for each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from annotator.audio import gain
from annotator.audio.decode import decode
from annotator.audio.null_player import NullPlayer
from annotator.audio.stretch import stretch
from tests.audio.clips import encode, sweep
from tests.audio.test_alsa_playback import BACKENDS, assert_device_got, run_player
from tests.fixtures.audio import AlsaFileSink


def quiet_clip(peak: float = 0.1, seconds: float = 1.0) -> bytes:
    """A sweep peaking at about `peak` of full scale (0.1: far-field quiet, 20 dB headroom)."""
    return encode(sweep(seconds, 16000) * (peak / 0.6), 16000, "WAV", "PCM_16")


def test_headroom_is_the_peak_and_a_capped_gain_never_clips() -> None:
    audio = decode(quiet_clip(0.5))
    peak = int(np.abs(audio.samples.astype(np.int32)).max())
    levels = audio.levels
    assert levels.headroom_db == pytest.approx(20 * math.log10(32767 / peak))
    applied = gain.effective_gain_db(24.0, levels)
    assert applied == levels.headroom_db
    louder = gain.apply_gain(audio.samples, applied)
    assert int(np.abs(louder.astype(np.int32)).max()) <= 32767
    # Capped, not flattened: the loudest sample lands at (not past) full scale.
    assert int(np.abs(louder.astype(np.int32)).max()) >= 32766
    ratio = louder.astype(np.float64) / np.where(audio.samples == 0, 1, audio.samples)
    assert np.allclose(ratio[audio.samples != 0], 10 ** (applied / 20), rtol=0.02, atol=0.0)


def test_silence_is_never_boosted_and_rms_normalises_to_the_target() -> None:
    silent = decode(encode(np.zeros((16000, 1), np.float32), 16000, "WAV", "PCM_16"))
    assert silent.levels.rms_dbfs is None
    assert gain.normalising_gain_db(silent.levels, -20.0) == 0.0
    audio = decode(quiet_clip(0.1))
    boost = gain.normalising_gain_db(audio.levels, -20.0)
    out = gain.apply_gain(audio.samples, gain.effective_gain_db(boost, audio.levels))
    assert gain.measure(out, 16000).rms_dbfs == pytest.approx(-20.0, abs=0.3)


def test_player_steps_six_db_and_refuses_a_step_that_would_clip() -> None:
    player = NullPlayer()
    try:
        audio = decode(quiet_clip(0.1))  # headroom ≈ 20 dB
        player.load(audio)
        assert player.step_gain(+1) and player.wait_idle()
        assert player.applied_gain_db == 6.0 and not player.gain_capped
        for _ in range(2):
            assert player.step_gain(+1)
        assert player.wait_idle()
        assert player.gain_db == 18.0 and player.applied_gain_db == 18.0
        assert player.step_gain(+1) is True  # 24 dB asked, capped at the headroom
        assert player.wait_idle() and player.gain_capped
        assert player.applied_gain_db == pytest.approx(audio.levels.headroom_db)
        assert player.step_gain(+1) is False  # already at the cap: nothing changes
        # Down from the cap starts at what is heard, so the first step is audible.
        assert player.step_gain(-1) and player.wait_idle()
        assert player.applied_gain_db == pytest.approx(audio.levels.headroom_db - 6.0)
        assert gain.describe(6.0, capped=False) == "+6 dB"
        assert gain.describe(4.25, capped=True) == "+4.2 dB max"
        assert gain.describe(-6.0, capped=False) == "−6 dB"
        assert gain.describe(0.0, capped=False) == ""
    finally:
        player.close()


def test_the_gain_carries_to_the_next_clip_capped_again_there() -> None:
    player = NullPlayer()
    try:
        player.load(decode(quiet_clip(0.1)))
        player.set_gain(12.0)
        loud = decode(quiet_clip(0.9))  # headroom ≈ 4.4 dB
        player.load(loud)
        assert player.gain_db == 12.0
        assert player.applied_gain_db == pytest.approx(loud.levels.headroom_db)
        assert player.gain_capped
    finally:
        player.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_device_receives_the_gained_clip(alsa_file_sink: AlsaFileSink, backend: str) -> None:
    clip = quiet_clip(0.1)
    result = run_player(alsa_file_sink.env(), clip, backend=backend, gain=12.0)
    assert result["last_error"] is None and result["gain_db"] == 12.0, result
    samples = decode(clip).samples
    expected = gain.apply_gain(samples, 12.0)
    assert not np.array_equal(expected, samples)
    assert_device_got(alsa_file_sink, backend, expected.tobytes())


@pytest.mark.slow
def test_device_receives_a_capped_gain_on_a_loud_clip(alsa_file_sink: AlsaFileSink) -> None:
    clip = quiet_clip(0.9)
    result = run_player(alsa_file_sink.env(), clip, backend="simpleaudio", gain=24.0)
    assert result["gain_capped"], result
    audio = decode(clip)
    expected = gain.apply_gain(audio.samples, audio.levels.headroom_db)
    assert_device_got(alsa_file_sink, "simpleaudio", expected.tobytes())
    got = np.frombuffer(alsa_file_sink.read(), dtype=np.int16)
    assert int(np.abs(got.astype(np.int32)).max()) <= 32767
    assert np.count_nonzero(np.abs(got.astype(np.int32)) >= 32767) <= 2  # no flattened run


@pytest.mark.slow
def test_device_receives_the_normalised_speed_render(alsa_file_sink: AlsaFileSink) -> None:
    clip = quiet_clip(0.05)
    result = run_player(
        alsa_file_sink.env(), clip, backend="simpleaudio", loudness=-20.0, speed=1.5
    )
    audio = decode(clip)
    boost = gain.effective_gain_db(gain.normalising_gain_db(audio.levels, -20.0), audio.levels)
    assert result["gain_db"] == pytest.approx(boost) and boost > 10, result
    expected = gain.apply_gain(stretch(audio.samples, 1.5), boost)
    assert_device_got(alsa_file_sink, "simpleaudio", expected.tobytes())
