"""Real backends into ALSA's file plugin: the bytes that reached the "sound card" are the clip.

Each test runs the player in its own subprocess with a tmp HOME/.asoundrc (see
tests/fixtures/audio.py), because alsa-lib parses its configuration once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotator.audio.decode import decode
from annotator.audio.stretch import stretch
from tests.audio.clips import encode, espeak_wav, sweep
from tests.fixtures.audio import AlsaFileSink

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["simpleaudio", "miniaudio"]


def run_player(env: dict[str, str], clip: bytes, **opts: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.audio.play_script", json.dumps(opts)],
        input=clip,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    # alsa-lib's own error prints must not leak onto the terminal (the TUI lives there).
    assert b"ALSA lib" not in proc.stderr, proc.stderr.decode()
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def assert_device_got(sink: AlsaFileSink, backend: str, expected: bytes) -> None:
    got = sink.read()
    if backend == "simpleaudio":
        # simpleaudio writes the buffer and closes: exactly the clip.
        assert len(got) == len(expected)
        assert got == expected
    else:
        # miniaudio keeps pulling (the null slave is unpaced) until we stop it at the clip's
        # end, so silence follows the clip.
        assert len(got) >= len(expected)
        assert got[: len(expected)] == expected
        assert not any(got[len(expected) :])


def speech_clips() -> list[tuple[str, bytes]]:
    clips = [("sweep-flac-stereo-22k", encode(sweep(2.0, 22050, channels=2), 22050, "FLAC"))]
    clips.append(("sweep-opus-16k", encode(sweep(2.0, 16000), 16000, "OGG", "OPUS")))
    speech = espeak_wav()
    if speech is not None:
        clips.append(("espeak-wav", speech))
    return clips


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("label", "clip"), speech_clips(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_device_receives_exactly_the_decoded_clip(
    alsa_file_sink: AlsaFileSink, backend: str, label: str, clip: bytes
) -> None:
    result = run_player(alsa_file_sink.env(), clip, backend=backend)
    assert result["name"] == backend, result
    assert result["drained"] and result["last_error"] is None, result
    assert result["first_frame_ms"] is not None
    assert_device_got(alsa_file_sink, backend, decode(clip).samples.tobytes())


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_seek_then_play_starts_at_that_frame(alsa_file_sink: AlsaFileSink, backend: str) -> None:
    clip = encode(sweep(2.0, 16000), 16000, "WAV", "PCM_16")
    result = run_player(alsa_file_sink.env(), clip, backend=backend, seek=0.75)
    assert result["last_error"] is None, result
    samples = decode(clip).samples
    assert_device_got(alsa_file_sink, backend, samples[12000:].tobytes())


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_speed_plays_the_wsola_render(alsa_file_sink: AlsaFileSink, backend: str) -> None:
    clip = encode(sweep(2.0, 16000), 16000, "WAV", "PCM_16")
    result = run_player(alsa_file_sink.env(), clip, backend=backend, speed=1.5)
    assert result["audible_speed"] == 1.5 and result["last_error"] is None, result
    rendered = stretch(decode(clip).samples, 1.5)
    assert rendered.shape[0] == round(32000 / 1.5)
    assert_device_got(alsa_file_sink, backend, rendered.tobytes())


def _no_real_cards() -> bool:
    cards = Path("/proc/asound/cards")
    return not cards.exists() or "no soundcards" in cards.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not _no_real_cards(), reason="a real sound card would answer the probe")
def test_auto_without_a_device_is_muted_with_a_reason(alsa_no_device_env: dict[str, str]) -> None:
    clip = encode(sweep(0.5, 16000), 16000, "WAV", "PCM_16")
    result = run_player(alsa_no_device_env, clip, backend="auto")
    assert result["name"] == "none"
    assert result["reason"].startswith("no audio device (")
    assert "ALSA cannot open PCM 'default'" in result["reason"]
    assert "annotator doctor" in result["reason"]
    assert result["first_frame_ms"] is not None  # the muted playhead still "plays"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "simpleaudio"), ("miniaudio", "miniaudio")]
)
def test_open_player_finds_the_file_plugin_device(
    alsa_file_sink: AlsaFileSink, choice: str, expected: str
) -> None:
    clip = encode(sweep(0.3, 16000), 16000, "WAV", "PCM_16")
    result = run_player(alsa_file_sink.env(), clip, backend=choice)
    assert result["name"] == expected
    assert result["reason"] == f"{expected} on the default output device"


PROBE = (
    "import json, sys; from annotator.audio import probe_backend; "
    "p = probe_backend(sys.argv[1]); print(json.dumps([p.works, p.detail]))"
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_plays_a_200_ms_tone(alsa_file_sink: AlsaFileSink, backend: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, backend],
        capture_output=True,
        env=alsa_file_sink.env(),
        cwd=REPO,
        timeout=60,
        check=True,
    )
    works, detail = json.loads(out.stdout)
    assert works, detail
    assert "200 ms tone" in detail
    frames = np.frombuffer(alsa_file_sink.read(), dtype=np.int16).reshape(-1, 2)
    assert frames.shape[0] >= 9600  # 200 ms at 48 kHz reached the device
    assert np.abs(frames[:9600]).max() > 5000


@pytest.mark.slow
def test_probe_reports_a_missing_device(alsa_no_device_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "simpleaudio"],
        capture_output=True,
        env=alsa_no_device_env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    works, detail = json.loads(out.stdout)
    assert not works
    assert "simpleaudio" in detail and "annotator doctor" in detail


def test_fixture_points_home_at_the_sink(alsa_file_sink: AlsaFileSink) -> None:
    assert os.environ["HOME"] == str(alsa_file_sink.home)
    assert "type file" in (alsa_file_sink.home / ".asoundrc").read_text()
