"""SSH-relay added latency: a keypress on the host → the laptop's device has the first frame.

A real `annotator relay` subprocess (the laptop side) runs with HOME pointing at a tmp dir whose
`.asoundrc` sends ALSA's default PCM to the file plugin (as tests/fixtures/audio.write_file_sink),
so a real backend opens, feeds and drains a real ALSA PCM; only the speaker is missing. This
process is the host: a RelayPlayer connected over loopback (no ssh in between; the tunnel's own
cost is not counted). Per play, a 0.5 s clip is loaded (pushed to the relay) a moment before the
key, as the TUI's next clip is; the figure is the relay's STARTED report (its monotonic clock when
the device took the first frame) minus the host's monotonic clock just before `play()`. One
machine, one monotonic clock. As tests/relay/test_relay.py::test_latency_keypress_to_laptop_device.

Run: `python -m bench.relay_bench [--quick]`.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from bench.harness import alsa_file_sink, free_port, pct
from bench.results import Figure, print_table

if TYPE_CHECKING:
    from annotator.audio.decode import DecodedAudio

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("simpleaudio", "miniaudio")
#: What the relay may add on loopback to the laptop's own start (issue 6), in ms.
TARGET_MS = 30.0
SECRET = "bench-relay-pairing-secret-0000"  # >= 26 characters: the relay refuses weaker ones
_NO_PULSE = "unix:/nonexistent/annotator-bench-no-pulse"


def _wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.0005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _pump(stream: IO[str] | None, sink: list[str]) -> None:
    if stream is None:
        return
    for line in iter(stream.readline, ""):
        sink.append(line)


def _clip(seconds: float, rate: int = 16000) -> DecodedAudio:
    from annotator.audio.decode import DecodedAudio

    t = np.arange(int(rate * seconds)) / rate
    mono = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    return DecodedAudio(np.ascontiguousarray(mono.reshape(-1, 1)), rate, 1, seconds)


def measure(backend: str, plays: int) -> tuple[list[float], int]:
    """Keypress → device first frame (ms) per play, and the bytes the laptop's device wrote."""
    from annotator.relay.player import RelayPlayer

    with tempfile.TemporaryDirectory(prefix="annotator-bench-relay-") as tmp:
        home = Path(tmp)
        capture = alsa_file_sink(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_")}
        env.update(
            HOME=str(home),
            PULSE_SERVER=_NO_PULSE,
            ANNOTATOR_RELAY_SECRET=SECRET,
            PYTHONPATH=str(ROOT),
        )
        script = Path(sys.executable).parent / "annotator"
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "annotator.cli"]
        port = free_port()
        out: list[str] = []
        err: list[str] = []
        proc = subprocess.Popen(
            [*cmd, "relay", "--port", str(port), "--audio", backend],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for stream, lines in ((proc.stdout, out), (proc.stderr, err)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()
        player = None
        try:
            if not _wait_for(lambda: any("listening on" in s for s in out), 20, 0.01):
                raise RuntimeError(f"relay did not start: {''.join(out + err)[-1000:]}")
            player = RelayPlayer(f"127.0.0.1:{port}", SECRET)
            clip = _clip(0.5)
            samples: list[float] = []
            for i in range(plays):
                player.load(clip)
                if i == 0 and not _wait_for(lambda: player.connected, 10, 0.01):
                    raise RuntimeError(f"not paired: {player.status}")
                time.sleep(0.05)  # the next clip arrives a moment before its auto-play
                started = time.monotonic()
                player.play()
                if not _wait_for(lambda: player.last_started is not None, 5):
                    raise RuntimeError(f"play #{i}: {player.status}: {''.join(err)[-1000:]}")
                last = player.last_started
                assert last is not None
                samples.append((last.relay_at - started) * 1000)
                player.stop()
            written = capture.stat().st_size if capture.exists() else 0
        finally:
            if player is not None:
                player.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
    return samples, written


def figures(quick: bool = False) -> list[Figure]:
    from bench.audio_start import run_backend

    plays = 15 if quick else 50
    out: list[Figure] = []
    for backend in BACKENDS:
        name = f"relay keypress → laptop device ({backend})"
        try:
            samples, written = measure(backend, plays)
            local = run_backend(backend, max(5, plays // 3))["starts_ms"]
            if not local:
                raise RuntimeError(f"{backend} gave no local start latency")
        except Exception as e:  # one backend failing must not hide the other's figures
            out.append(
                Figure(
                    f"{name}, p99",
                    None,
                    "ms",
                    target=TARGET_MS,
                    direction="max",
                    floor_what=f"{backend} playing locally",
                    against="margin",
                    not_run=f"{type(e).__name__}: {e}"[:300],
                )
            )
            continue
        p50, p99 = statistics.median(samples), pct(samples, 99)
        floor_what = (
            f"the same backend playing locally into the same ALSA file sink (bench.audio_start: "
            f"load+play → first frame, n={len(local)})"
        )
        detail = (
            f"n={len(samples)}, max {max(samples):.2f} ms; real `annotator relay` on loopback, "
            f"ALSA file plugin (last stream wrote {written:,} B); target: what the relay may add"
        )
        out.append(
            Figure(
                f"{name}, p50",
                p50,
                "ms",
                TARGET_MS,
                "max",
                detail,
                floor=statistics.median(local),
                floor_what=floor_what,
                against="margin",
            )
        )
        out.append(
            Figure(
                f"{name}, p99",
                p99,
                "ms",
                TARGET_MS,
                "max",
                "as above, p99 against the local p99",
                p99=p99,
                floor=pct(local, 99),
                floor_what="as above",
                against="margin",
            )
        )
    return out


def main(argv: list[str]) -> int:
    print_table(figures(quick="--quick" in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
