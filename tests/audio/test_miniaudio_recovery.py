"""miniaudio's device stopping by itself (its ALSA backend does, now and then, on the unpaced file
sink): the player must notice, restart it, and keep every later clip audible.

Runs in a subprocess per test (alsa-lib parses its configuration once per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.audio import AlsaFileSink

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("miniaudio")


def run_script(sink: AlsaFileSink, out: Path, **opts: Any) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.audio.recovery_script",
            json.dumps({**opts, "out": str(out)}),
        ],
        capture_output=True,
        env=sink.env(),
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"ALSA lib" not in proc.stderr, proc.stderr.decode()
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_device_stopped_behind_the_players_back_is_restarted(
    make_alsa_file_sink: Callable[..., AlsaFileSink], tmp_path: Path
) -> None:
    # The restart reopens the device: with append, ALSA writes each stream to a file of its
    # own (capture.raw, capture.raw.0001, ...) instead of truncating the first.
    sink = make_alsa_file_sink(append=True)
    out = tmp_path / "clips"
    result = run_script(sink, out, mode="forced")
    assert result["stopped_mid_clip"] and result["stop_rc"] == 0, result
    assert result["restarts"] == 1 and result["last_error"] is None, result
    assert result["drained_first"] and result["drained_second"], result
    got = b"".join(f.read_bytes() for f in sorted(sink.home.glob(sink.capture.name + "*")))
    first, second = (out / "first.raw").read_bytes(), (out / "second.raw").read_bytes()
    # The first clip resumes where the feed was (the buffer in hand when it stopped is lost) ...
    first_tail = got.find(first[len(first) // 4 :])
    assert first_tail >= 0
    # ... and the next clip is heard in full, after it.
    assert got.find(second, first_tail) > first_tail


@pytest.mark.slow
def test_many_short_clips_with_seeks_and_stops_all_play(
    alsa_file_sink: AlsaFileSink, tmp_path: Path
) -> None:
    out = tmp_path / "clips"
    result = run_script(alsa_file_sink, out, mode="stress", seconds=8.0, seed=7)
    assert result["iterations"] > 100, result
    assert result["undrained"] == [] and result["drained_marker"], result
    assert result["last_error"] is None, result
    assert (out / "marker.raw").read_bytes() in alsa_file_sink.read()
