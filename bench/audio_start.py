"""Audio start latency per backend, and what each player call costs the TUI's event loop.

"Start latency" is `load()+play()` on the caller's thread until `first_frame_at` (the moment the
first buffer of the clip was handed to the device). Each backend runs in its own process with
ALSA's default PCM pointed at the file plugin (a tmp HOME/.asoundrc), so it works on a machine
without a sound card; the device thread, the PCM open and the copy are real, only the speaker is
not. Run: `python -m bench.audio_start [--quick]`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import pct
from bench.results import Figure, print_table

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("simpleaudio", "miniaudio", "none")
#: What the player (its device thread, the segment bookkeeping) may add to the library's own call.
START_MARGIN_MS = 5.0


def _child(backend: str, rounds: int) -> dict[str, Any]:
    """Runs inside the benchmark subprocess."""
    from annotator.audio.backends import _open
    from annotator.audio.decode import DecodedAudio

    rate, seconds = 16000, 30.0
    t = np.arange(int(rate * seconds)) / rate
    clips = []
    for i in range(4):
        mono = (np.sin(2 * np.pi * (200 + 50 * i) * t) * 8000).astype(np.int16)
        samples = np.ascontiguousarray(mono.reshape(-1, 1))
        clips.append(DecodedAudio(samples, rate, 1, seconds))
    player, reason = _open(backend)
    starts: list[float] = []
    costs: dict[str, list[float]] = {"position": [], "toggle": [], "seek": [], "set_speed": []}
    try:
        for i in range(rounds):
            player.stop()
            player.wait_idle(2.0)
            called = time.monotonic()
            player.load(clips[i % len(clips)])
            player.play()
            deadline = called + 2.0
            while player.first_frame_at is None and time.monotonic() < deadline:
                time.sleep(0.0002)
            if player.first_frame_at is not None:
                starts.append((player.first_frame_at - called) * 1000)
            for _ in range(5):
                for name, call in (
                    ("position", lambda: player.position),
                    ("toggle", player.toggle),
                    ("seek", lambda: player.seek(3.0)),
                    ("set_speed", lambda: player.set_speed(1.0)),
                ):
                    c0 = time.perf_counter()
                    call()
                    costs[name].append((time.perf_counter() - c0) * 1000)
                player.wait_idle(2.0)
        render_ms, during, late = _render_contention(player)
        costs["position during WSOLA"] = during
        costs["1 ms sleep's oversleep during WSOLA"] = late
    finally:
        player.close()
    return {
        "name": player.name,
        "reason": reason,
        "starts_ms": starts,
        "raw_ms": _raw_starts(backend, clips, rounds),
        "costs_ms": costs,
        "render_ms": render_ms,
    }


def _raw_starts(backend: str, clips: list[Any], rounds: int) -> list[float]:
    """The floor: the audio library's own call on the same PCM, no player around it. simpleaudio:
    `play_buffer` until it returns (the point where our player marks its first frame);
    miniaudio: an open device's `start` until its callback asks for the first frames."""
    starts: list[float] = []
    if backend == "simpleaudio":
        import simpleaudio

        for i in range(rounds):
            clip = clips[i % len(clips)]
            t0 = time.monotonic()
            play = simpleaudio.play_buffer(clip.samples, 1, 2, clip.sample_rate)
            starts.append((time.monotonic() - t0) * 1000)
            play.stop()
            deadline = time.monotonic() + 0.25  # closed before the next opens, as the player
            while play.is_playing() and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(0.05)  # its thread closes the PCM after is_playing() turns false
    elif backend == "miniaudio":
        import miniaudio

        device = miniaudio.PlaybackDevice(
            output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=16000
        )
        try:
            for i in range(rounds):
                samples = clips[i % len(clips)].samples
                first: list[float] = []

                def feed(data: Any = samples, first: list[float] = first) -> Any:
                    frames = yield b""
                    first.append(time.monotonic())
                    pos = 0
                    while True:
                        chunk = data[pos : pos + frames].tobytes()
                        pos += frames
                        frames = yield chunk

                gen = feed()
                next(gen)
                t0 = time.monotonic()
                device.start(gen)
                deadline = t0 + 2
                while not first and time.monotonic() < deadline:
                    time.sleep(0.0002)
                if first:
                    starts.append((first[0] - t0) * 1000)
                device.stop()
        finally:
            device.close()
    return starts


def _render_contention(player: Any) -> tuple[float, list[float], list[float]]:
    """How long a 1.5x render of a 30 s 48 kHz stereo clip takes, and what `position` costs the
    caller meanwhile (the render thread competes for the GIL)."""
    from annotator.audio.decode import DecodedAudio

    rate, seconds = 48000, 30.0
    t = np.arange(int(rate * seconds)) / rate
    mono = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)
    clip = DecodedAudio(np.ascontiguousarray(np.stack([mono, mono], axis=1)), rate, 2, seconds)
    player.load(clip)
    player.play()
    started = time.monotonic()
    player.set_speed(1.5)
    during: list[float] = []
    late: list[float] = []
    while player.audible_speed != 1.5 and time.monotonic() - started < 20:
        c0 = time.perf_counter()
        _ = player.position
        c1 = time.perf_counter()
        during.append((c1 - c0) * 1000)
        time.sleep(0.001)
        late.append((time.perf_counter() - c1) * 1000 - 1.0)
    render_ms = (time.monotonic() - started) * 1000
    player.set_speed(1.0)
    return render_ms, during, late


def run_backend(backend: str, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="annotator-bench-audio-") as home:
        capture = Path(home) / "capture.raw"
        (Path(home) / ".asoundrc").write_text(
            f'pcm.!default {{ type file slave.pcm "null" file "{capture}" format "raw" }}\n'
        )
        env = {"HOME": home, "PULSE_SERVER": "unix:/nonexistent", "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [sys.executable, "-m", "bench.audio_start", "--child", backend, str(rounds)],
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=300,
            check=True,
        )
    result: dict[str, Any] = json.loads(proc.stdout.decode().splitlines()[-1])
    return result


def figures(quick: bool = False) -> list[Figure]:
    rounds = 5 if quick else 20
    out: list[Figure] = []
    medians: dict[str, float] = {}
    for backend in BACKENDS:
        res = run_backend(backend, rounds)
        starts = res["starts_ms"]
        out.append(
            Figure(
                f"WSOLA 1.5× render ({backend})",
                res["render_ms"],
                "ms",
                detail="30 s of 48 kHz stereo on a worker thread; the old speed keeps playing",
                no_floor="CPU work of the time-stretch itself",
            )
        )
        raw = res.get("raw_ms") or []
        floor_what = (
            f"{backend}'s own device call on the same PCM, no player (n={len(raw)})" if raw else ""
        )
        start_name = f"audio start {backend}, median"
        if res["name"] != backend or not starts:
            out.append(
                Figure(
                    start_name,
                    None,
                    "ms",
                    START_MARGIN_MS,
                    "max",
                    floor_what=floor_what or "the library's own device call",
                    against="margin",
                    not_run=res["reason"] or "no start latency measured",
                )
            )
            continue
        medians[backend] = statistics.median(starts)
        detail = (
            f"load+play → first frame at the device; n={len(starts)}, max {max(starts):.2f} ms, "
            "30 s 16 kHz mono clips"
        )
        if raw:
            out.append(
                Figure(
                    start_name,
                    statistics.median(starts),
                    "ms",
                    START_MARGIN_MS,
                    "max",
                    detail + "; target: what the player may add to its library",
                    p99=pct(starts, 99),
                    floor=statistics.median(raw),
                    floor_what=floor_what,
                    against="margin",
                )
            )
        else:
            out.append(
                Figure(
                    start_name,
                    statistics.median(starts),
                    "ms",
                    detail=detail,
                    p99=pct(starts, 99),
                    no_floor="no device library under this player",
                )
            )
        for name, values in res["costs_ms"].items():
            limited = "oversleep" not in name
            label = f"player.{name}" if limited else name
            out.append(
                Figure(
                    f"{label} ({backend}), median",
                    statistics.median(values),
                    "ms",
                    target=1.0 if limited else None,
                    direction="max" if limited else "info",
                    detail=f"n={len(values)}, p99 {pct(values, 99):.3f} ms, max {max(values):.3f}",
                    p99=pct(values, 99),
                    no_floor=(
                        "time the call takes on the caller's thread: an absolute budget"
                        if limited
                        else "an oversleep is measured against the sleep asked for"
                    ),
                )
            )
    sa, mini = medians.get("simpleaudio"), medians.get("miniaudio")
    out.append(
        Figure(
            "audio start: simpleaudio beside miniaudio",
            sa,
            "ms",
            detail="medians, same run; a ratio < 1: simpleaudio starts sooner",
            floor=mini,
            floor_what="miniaudio's median start, same run",
        )
    )
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(argv[1], int(argv[2]))))
        return 0
    print_table(figures(quick="--quick" in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
