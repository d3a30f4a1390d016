"""TUI figures (issue 3): submit key → next clip's first audio frame, cold start, client RSS.

The server is a real `annotator serve` on loopback, pre-filled through its repository with tiny
distinct WAV clips (bench.server_bench.prepare). Every client runs in its own process whose HOME
holds an `.asoundrc` pointing ALSA's default PCM at the file plugin (tests/fixtures/audio.py), so
a real backend opens, feeds and drains a real ALSA PCM; only the speaker is missing. The backend is
what `--audio auto` picks here (simpleaudio where installed, else miniaudio); `--audio` overrides.
miniaudio's device has been seen to stop pulling frames on this null-slave sink after a few hundred
clips (running, fed, never called back), which this benchmark reports as an error. ALSA parses
its configuration once per process, hence the subprocesses.

1. Submit → first frame: the real TUI (`launch.build_services` + `AnnotatorApp`, headless through
   Textual's Pilot). Per clip the form is filled (transcript loaded, an intent picked), the app is
   let go idle (the next clips prefetched, the outbox sent: a person takes seconds per clip), then
   the submit key is posted as a key event; the figure is `player.first_frame_at` (the moment the
   device thread handed the next clip's first buffer to ALSA) minus the time just before the post.
   Timed over 200 clips (60 with --quick) after 5 warm-up clips; the idle wait before each key is
   "every queue drained and under 0.5 ms of CPU in 5 ms". Once with prefetch on (the configured
   depth, 3) and once with prefetch off (ANNOTATOR_PREFETCH=0: the clip is leased, downloaded and
   decoded after the key).
2. Cold start: the real `annotator` command in a pty (120×40) against the running server, fresh
   ANNOTATOR_HOME each time, `--audio <backend>`; time from spawn until the first non-silent bytes
   appear in the ALSA capture file. Median of 5.
3. Client RSS: VmRSS of the process of (1) after 100 clips and after 1,000 (300 with --quick).

Run: `python -m bench.tui_bench [--quick] [--audio miniaudio|simpleaudio]`.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import alsa_file_sink, client_args, own_mb, pct, proc_status_mb, wait_for_clip
from bench.results import Figure
from bench.server_bench import prepare, running_server

ROOT = Path(__file__).resolve().parents[1]
#: What the TUI may add to the player's own start: one frame at 60 Hz.
KEY_TARGET_MS = 16.0
#: What the client may add to its imports before the first clip is heard (issue 9).
COLD_MARGIN_S = 0.3
RSS_TARGET_MB = 120.0
#: "Flat": what VmRSS may move between clip 100 and the last clip (allocator noise, caches).
RSS_GROWTH_TARGET_MB = 5.0
WARMUP_CLIPS = 5
COLD_RUNS = 5
SUBMIT_KEY = "ctrl+s"
_NO_PULSE = "unix:/nonexistent/annotator-bench-no-pulse"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _client_env(root: Path, name: str, url: str, token: str, **extra: str) -> dict[str, str]:
    home = root / name
    alsa_file_sink(home / "alsa")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_")}
    env.update(
        HOME=str(home / "alsa"),
        PULSE_SERVER=_NO_PULSE,
        ANNOTATOR_HOME=str(home / "annotator"),
        ANNOTATOR_SERVER=url,
        ANNOTATOR_TOKEN=token,
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


# ------------------------------------------------------------------ 1 + 3: the headless TUI


def _key_child(config: dict[str, Any], out: Path) -> None:
    """Runs in its own process (HOME with the ALSA file sink): submit → first frame, and RSS."""
    from textual import events

    from annotator.app import AnnotatorApp
    from annotator.services import build_services

    clips: int = config["clips"]
    timed: int = config["timed"]
    rss_at: int = config["rss_at"]
    args = client_args(audio=config["audio"])
    services = build_services(args)
    if services.player.name != config["audio"]:
        raise RuntimeError(f"wanted {config['audio']}, got {services.player_reason}")
    services.start()
    depth = services.settings.prefetch
    result: dict[str, Any] = {"backend": services.player.name, "depth": depth}
    latencies: list[float] = []
    rss: dict[str, float] = {}

    def idle() -> bool:
        # A person takes seconds per clip: by the next submit the prefetch thread has refilled
        # and the sync thread has sent the previous annotation.
        return services.prefetcher.status.ready >= depth and services.store.outbox_count() == 0

    async def drive() -> None:
        app = AnnotatorApp(services)
        player = services.player
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await wait_for_clip(pilot, app, 30, step=0.01)
            for i in range(clips):
                deadline = time.monotonic() + 10
                while not _showing(screen):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"clip {i}: none on screen after 10 s")
                    await pilot.pause(0.001)
                screen.transcript.load(f"turn on the kitchen lights {i}")
                screen.intent.pick("iot_hue_lighton")
                deadline = time.monotonic() + 5
                while not idle() and time.monotonic() < deadline:
                    await asyncio.sleep(0.002)
                await pilot.pause(0)  # every queue of the screen drained
                await _quiet()  # and the process idle: nothing of ours in front of the key
                t0 = time.monotonic()
                app.post_message(events.Key(SUBMIT_KEY, None))
                deadline = t0 + 10
                while (player.first_frame_at or 0.0) < t0:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"clip {i}: no first frame 10 s after submit: "
                            f"{_diagnose(services, screen)}"
                        )
                    await asyncio.sleep(0.0002)
                assert player.first_frame_at is not None
                if WARMUP_CLIPS <= i < WARMUP_CLIPS + timed:
                    latencies.append((player.first_frame_at - t0) * 1000)
                if i + 1 == rss_at:
                    rss["first"] = own_mb("VmRSS")
            await pilot.pause(0.05)
            rss["last"] = own_mb("VmRSS")

    try:
        asyncio.run(drive())
        device = _device_floor(services.player, config.get("device_rounds", 0))
    finally:
        services.shutdown()
    result.update(latencies_ms=latencies, rss_mb=rss, clips=clips, device_ms=device)
    out.write_text(json.dumps(result))


def _device_floor(player: Any, rounds: int) -> list[float]:
    """The floor of submit → first frame: the same player in the same process, handed a decoded
    clip directly (`load` + `play`, no TUI, no key) until its first frame reaches the device."""
    import numpy as np

    from annotator.audio.decode import DecodedAudio

    rate = 16_000
    tone = (np.sin(np.arange(rate // 4) * 0.2) * 8000).astype(np.int16).reshape(-1, 1)
    clip = DecodedAudio(np.ascontiguousarray(tone), rate, 1, 0.25)
    starts: list[float] = []
    for _ in range(rounds):
        player.stop()
        player.wait_idle(2.0)
        t0 = time.monotonic()
        player.load(clip)
        player.play()
        deadline = t0 + 5
        while (player.first_frame_at or 0.0) < t0 and time.monotonic() < deadline:
            time.sleep(0.0002)
        if (player.first_frame_at or 0.0) >= t0:
            starts.append((player.first_frame_at - t0) * 1000)
    player.stop()
    return starts


async def _quiet(window_s: float = 0.005, busy_s: float = 0.0005, limit_s: float = 1.0) -> None:
    """Until the process used under `busy_s` of CPU in a `window_s` of wall time (all threads:
    the event loop, prefetch, sync, audio), as Textual's `wait_for_idle` but finer-grained."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        cpu = time.process_time()
        await asyncio.sleep(window_s)
        if time.process_time() - cpu < busy_s:
            return


def _showing(screen: Any) -> bool:
    """A clip is on screen (a function, so the type checker does not keep the last answer)."""
    return screen.current is not None


def _diagnose(services: Any, screen: Any) -> str:
    player, status = services.player, services.prefetcher.status
    return (
        f"on screen {screen.current and screen.current.lease_id}, player playing "
        f"{player.playing} error {player.last_error}, prefetch {status}, "
        f"outbox {services.store.outbox_count()}, form error "
        f"{screen.query_one('#form-error').render()!s}; device "
        + ", ".join(
            f"{name}={getattr(player, name, '?')!r}"
            for name in ("_running", "_feeding", "_feed", "_cursor", "_load_id", "_generation")
        )
        + f", miniaudio running={getattr(getattr(player, '_device', None), 'running', '?')}"
        + f" generator={getattr(getattr(player, '_device', None), 'callback_generator', '?')}"
    )


def _run_key_child(
    root: Path, name: str, url: str, token: str, config: dict[str, Any], **env: str
) -> dict[str, Any]:
    out = root / f"{name}.json"
    log = root / f"{name}.log"
    cmd = [sys.executable, "-m", "bench.tui_bench", "--key-child", json.dumps(config), str(out)]
    with open(log, "wb") as f:
        code = subprocess.call(
            cmd, env=_client_env(root, name, url, token, **env), stdout=f, stderr=f, cwd=ROOT
        )
    if code != 0 or not out.exists():
        raise RuntimeError(f"{name} child exited {code}: {log.read_text()[-3000:]}")
    data: dict[str, Any] = json.loads(out.read_text())
    return data


# ------------------------------------------------------------------ 2: cold start in a pty


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def _first_sound(capture: Path, deadline: float) -> float | None:
    """When the first non-silent byte reached the capture file (polled), or None."""
    seen = 0
    while time.monotonic() < deadline:
        try:
            size = capture.stat().st_size
        except FileNotFoundError:
            size = 0
        if size > seen:
            now = time.monotonic()
            with capture.open("rb") as f:
                f.seek(seen)
                chunk = f.read(size - seen)
            if any(chunk):
                return now
            seen = size
        time.sleep(0.001)
    return None


def _spawn_in_pty(
    cmd: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, subprocess.Popen[bytes], int]:
    """Start `cmd` on a fresh 120×40 pty whose output is drained; (spawn time, process, master)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    threading.Thread(target=_drain, args=(master,), daemon=True).start()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, cwd=cwd
    )
    os.close(slave)
    return t0, proc, master


def _cold_start(root: Path, run: int, url: str, token: str, audio: str) -> float:
    env = _client_env(root, f"cold{run}", url, token, TERM="xterm-256color")
    capture = Path(env["HOME"]) / "capture.raw"
    script = Path(sys.executable).parent / "annotator"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "annotator.cli"]
    t0, proc, master = _spawn_in_pty([*cmd, "--audio", audio], env, root)
    try:
        heard = _first_sound(capture, t0 + 20)
        if heard is None:
            raise RuntimeError(f"cold start {run}: nothing reached the ALSA file sink in 20 s")
        os.write(master, b"\x11")  # ctrl+q: quit as a person would (releases unused leases)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return heard - t0


IMPORT_FLOOR = "import textual.app, httpx, numpy, soundfile, pydantic"


def _import_floor(root: Path, run: int, url: str, token: str) -> tuple[float, float]:
    """The floor of the cold start: a fresh interpreter importing what the client needs, spawned
    the same way (same environment, a pty) and timed spawn → exit (polled every 2 ms, as the
    cold start's capture file is every 1 ms); also its peak RSS, the floor of the client's."""
    env = _client_env(root, f"floor{run}", url, token, TERM="xterm-256color")
    t0, proc, master = _spawn_in_pty([sys.executable, "-c", IMPORT_FLOOR], env, root)
    peak = 0.0
    try:
        deadline = t0 + 60
        while proc.poll() is None and time.monotonic() < deadline:
            peak = max(peak, proc_status_mb("VmHWM", proc.pid) or 0.0)
            time.sleep(0.002)
        took = time.monotonic() - t0
        code = proc.wait(5)
    finally:
        os.close(master)
    if code != 0:
        raise RuntimeError(f"`python -c '{IMPORT_FLOOR}'` exited {code}")
    return took, peak


# ------------------------------------------------------------------ entry points


def default_backend() -> str:
    """What `--audio auto` picks with a working ALSA default PCM: simpleaudio where it is
    installed (the issue's choice), else miniaudio."""
    import importlib.util

    return "simpleaudio" if importlib.util.find_spec("simpleaudio") else "miniaudio"


def figures(quick: bool, audio: str | None = None) -> list[Figure]:
    audio = audio or default_backend()
    timed = 60 if quick else 200
    rss_clips = 300 if quick else 1_000
    off_clips = (30 if quick else 100) + WARMUP_CLIPS
    on_clips = max(rss_clips, timed + WARMUP_CLIPS)
    total = on_clips + off_clips + COLD_RUNS * 8 + 50
    t0 = time.monotonic()

    def step(what: str) -> None:
        print(f"  tui: {what} at {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        root = Path(tmp)
        (token,) = prepare(root, total, 1)
        with running_server(root, workers=1) as url:
            step(f"{total} clips queued, server up")
            cold: list[float] = []
            floor: list[float] = []
            floor_mb: list[float] = []
            for i in range(COLD_RUNS):  # alternating, so load changes hit both alike
                took, peak = _import_floor(root, i, url, token)
                floor.append(took)
                floor_mb.append(peak)
                cold.append(_cold_start(root, i, url, token, audio))
            step("cold starts")
            base = {"audio": audio, "rss_at": 100, "device_rounds": timed // 2}
            on = _run_key_child(
                root, "prefetch-on", url, token, {**base, "clips": on_clips, "timed": timed}
            )
            step(f"prefetch on: {on_clips} clips")
            off = _run_key_child(
                root,
                "prefetch-off",
                url,
                token,
                {**base, "clips": off_clips, "timed": off_clips - WARMUP_CLIPS},
                ANNOTATOR_PREFETCH="0",
            )
            step(f"prefetch off: {off_clips} clips")
    load = f"loadavg {load_before} → {_loadavg()}"
    size = " (quick size)" if quick else ""
    lat_on, lat_off = on["latencies_ms"], off["latencies_ms"]
    on50, on99 = pct(lat_on, 50), pct(lat_on, 99)
    off50, off99 = pct(lat_off, 50), pct(lat_off, 99)
    how = (
        f"{len(lat_on)} clips{size}, real TUI headless, --audio {on['backend']} into ALSA's file "
        f"plugin, local `annotator serve`; key posted → player.first_frame_at; max "
        f"{max(lat_on):.1f} ms; {load}"
    )
    rss100, rss_end = on["rss_mb"]["first"], on["rss_mb"]["last"]
    growth = rss_end - rss100
    device = on.get("device_ms") or []
    dev50, dev99 = pct(device, 50), pct(device, 99)
    device_what = (
        f"the same player in the same process handed a decoded clip (load+play → first frame), "
        f"n={len(device)}"
    )
    cold50, floor50 = statistics.median(cold), statistics.median(floor)
    return [
        Figure(
            "submit→first frame p50",
            on50,
            "ms",
            KEY_TARGET_MS,
            "max",
            how,
            floor=dev50,
            floor_what=device_what,
            against="margin",
        ),
        Figure(
            "submit→first frame p99",
            on99,
            "ms",
            KEY_TARGET_MS,
            "max",
            f"one frame at 60 Hz is what the TUI may add to the device's start; p99 {on99:.1f} "
            f"vs the floor's {dev99:.1f} ms",
            p99=on99,
            floor=dev99,
            floor_what="as above, p99",
            against="margin",
        ),
        Figure(
            "submit→first frame, prefetch off p50",
            off50,
            "ms",
            None,
            "info",
            f"{len(lat_off)} clips{size}, ANNOTATOR_PREFETCH=0 (lease, download, decode after "
            f"the key); p99 {off99:.1f} ms; the ratio is what prefetch buys",
            floor=on50,
            floor_what="submit→first frame p50 with prefetch on, same run",
        ),
        Figure(
            "cold start to first clip audible",
            cold50,
            "s",
            COLD_MARGIN_S,
            "max",
            f"median of {COLD_RUNS}: real `annotator --audio {audio}` in a pty, fresh "
            f"ANNOTATOR_HOME, spawn → first non-silent bytes in ALSA's capture file; runs "
            + ", ".join(f"{c:.2f}" for c in cold)
            + "; floor runs "
            + ", ".join(f"{c:.2f}" for c in floor),
            floor=floor50,
            floor_what=f'`python -c "{IMPORT_FLOOR}"` in a fresh process, spawn → exit, median '
            f"of {COLD_RUNS} alternating with the cold starts",
            against="margin",
        ),
        Figure(
            f"client RSS after {on['clips']:,} clips",
            rss_end,
            "MB",
            RSS_TARGET_MB,
            "max",
            f"VmRSS of the TUI process of the submit benchmark{size}: {rss100:.0f} MB after 100 "
            f"clips, {rss_end:.0f} MB after {on['clips']:,}; the target is a ceiling on memory",
            floor=statistics.median(floor_mb),
            floor_what="peak RSS of the import floor (the interpreter and the client's imports)",
        ),
        Figure(
            f"client RSS growth 100→{on['clips']:,} clips",
            growth,
            "MB",
            RSS_GROWTH_TARGET_MB,
            "max",
            f"flat means no growth after the first 100 clips; {RSS_GROWTH_TARGET_MB:.0f} MB "
            "allows for allocator noise",
            no_floor="a difference between two readings of the same process",
        ),
    ]


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--key-child":
        _key_child(json.loads(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.tui_bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--audio", default=None, choices=["miniaudio", "simpleaudio"])
    args = parser.parse_args()
    from bench.results import print_table

    print_table(figures(args.quick, args.audio))


if __name__ == "__main__":
    main()
