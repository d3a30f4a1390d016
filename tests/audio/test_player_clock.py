"""The shared player logic, driven through NullPlayer (no device, same clock and renders)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from annotator.audio.decode import DecodedAudio
from annotator.audio.null_player import NullPlayer
from annotator.audio.player import Player
from annotator.audio.stretch import normalise_speed, stretch
from tests.audio.clips import dominant_hz, tone


def _audio(seconds: float = 2.0, rate: int = 16000, freq: float = 440.0) -> DecodedAudio:
    samples = np.ascontiguousarray(np.rint(tone(freq, seconds, rate) * 32767).astype(np.int16))
    return DecodedAudio(samples=samples, sample_rate=rate, channels=1, duration_s=seconds)


@pytest.fixture
def player() -> Iterator[NullPlayer]:
    p = NullPlayer()
    yield p
    p.close()


def test_null_player_is_a_player() -> None:
    assert isinstance(NullPlayer(), Player)


def test_playhead_moves_in_real_time_and_pause_holds_it(player: NullPlayer) -> None:
    player.load(_audio())
    assert player.position == 0.0 and not player.playing
    player.play()
    time.sleep(0.2)
    moved = player.position
    assert 0.15 < moved < 0.5
    assert player.playing
    player.pause()
    held = player.position
    time.sleep(0.1)
    assert player.position == held and not player.playing
    player.toggle()
    assert player.playing
    time.sleep(0.05)
    assert player.position > held


def test_first_frame_at_is_stamped_once_per_load(player: NullPlayer) -> None:
    player.load(_audio())
    assert player.first_frame_at is None
    before = time.monotonic()
    player.play()
    assert player.wait_idle(1.0)
    first = player.first_frame_at
    assert first is not None and before <= first <= time.monotonic()
    player.seek(1.0)
    assert player.wait_idle(1.0)
    assert player.first_frame_at == first
    player.load(_audio())
    assert player.first_frame_at is None


def test_seek_is_absolute_and_clamped(player: NullPlayer) -> None:
    player.load(_audio(seconds=2.0))
    player.seek(1.25)
    assert player.position == 1.25
    player.seek(-3)
    assert player.position == 0.0
    player.seek(99)
    assert player.position == 2.0
    player.seek(float("nan"))
    assert player.position == 0.0


def test_clip_end_stops_and_play_again_starts_over(player: NullPlayer) -> None:
    player.load(_audio(seconds=0.2))
    player.play()
    time.sleep(0.3)
    assert not player.playing
    assert player.position == pytest.approx(0.2)
    player.play()
    assert player.playing and player.position < 0.05


def test_stop_rewinds(player: NullPlayer) -> None:
    player.load(_audio())
    player.play()
    time.sleep(0.05)
    player.stop()
    assert not player.playing and player.position == 0.0


def test_methods_without_a_clip_or_after_close_are_harmless() -> None:
    p = NullPlayer()
    for call in (p.play, p.pause, p.toggle, p.stop):
        call()
    p.seek(3)
    p.set_speed(1.5)
    assert p.position == 0.0 and not p.playing and p.speed == 1.5
    p.close()
    p.close()
    p.load(_audio())
    p.play()
    assert not p.playing


def test_speed_is_clamped_and_stepped_values_are_stable() -> None:
    assert normalise_speed(3.0) == 2.0
    assert normalise_speed(0.1) == 0.5
    assert normalise_speed(0.25 * 5) == 1.25
    assert normalise_speed(float("inf")) == 1.0


def test_stretch_keeps_pitch_and_shortens_by_the_speed() -> None:
    audio = _audio(seconds=3.0)
    for speed in (0.5, 1.5, 2.0):
        out = stretch(audio.samples, speed)
        assert out.dtype == np.int16 and out.shape[1] == 1 and out.flags["C_CONTIGUOUS"]
        assert out.shape[0] == round(audio.frames / speed)
        # the clip's end survives the stretch (WSOLA alone drops its last frame or two)
        assert np.abs(out[-round(0.05 * audio.sample_rate / speed) :]).max() > 10000
        assert dominant_hz(out, audio.sample_rate) == pytest.approx(440, rel=0.02)
    assert stretch(audio.samples, 1.0) is audio.samples


def test_speed_switches_once_rendered_and_clock_follows(player: NullPlayer) -> None:
    player.load(_audio(seconds=4.0))
    player.play()
    player.set_speed(2.0)
    assert player.speed == 2.0  # what the UI steps from, even before the render lands
    assert player.wait_idle(5.0)
    assert player.audible_speed == 2.0
    start = player.position
    time.sleep(0.2)
    assert player.position - start == pytest.approx(0.4, abs=0.1)


def test_speed_carries_over_to_the_next_clip(player: NullPlayer) -> None:
    player.load(_audio())
    player.set_speed(1.5)
    assert player.wait_idle(5.0)
    player.load(_audio(seconds=1.0))
    assert player.audible_speed == 1.0  # new clip: 1x until its render lands
    assert player.wait_idle(5.0)
    assert player.audible_speed == 1.5 and player.speed == 1.5


def test_back_to_1x_is_immediate(player: NullPlayer) -> None:
    player.load(_audio())
    player.set_speed(0.75)
    assert player.wait_idle(5.0)
    player.set_speed(1.0)
    assert player.audible_speed == 1.0


def test_caller_thread_cost_stays_under_a_millisecond(player: NullPlayer) -> None:
    """The TUI calls these from its event loop; device work happens on the worker."""
    player.load(_audio(seconds=30.0, rate=48000))
    costs: dict[str, list[float]] = {"position": [], "toggle": [], "seek": [], "play": []}
    calls: list[tuple[str, Callable[[], object]]] = [
        ("position", lambda: player.position),
        ("toggle", player.toggle),
        ("seek", lambda: player.seek(7.5)),
        ("play", player.play),
    ]
    for _ in range(200):
        for name, call in calls:
            start = time.perf_counter()
            call()
            costs[name].append(time.perf_counter() - start)
    for name, samples in costs.items():
        assert statistics.median(samples) < 0.0005, name


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        ("none", "audio off"),
        ("relay", "no relay configured"),
        ("pulse", "PulseAudio"),
        ("loudspeaker", "unknown audio backend 'loudspeaker'"),
    ],
)
def test_open_player_choices_that_cannot_play_are_muted_with_a_reason(
    choice: str, words: str
) -> None:
    from annotator.audio import open_player

    player, reason = open_player(choice)
    try:
        assert player.name == "none"
        assert words in reason
    finally:
        player.close()
