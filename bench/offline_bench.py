"""Offline figures (issue 4): `annotator checkout` time, and the client's memory with a full cache.

The server is a real `annotator serve` on loopback, pre-filled through its repository (as
`annotator ingest` does) with realistic clips: 4 s of 16 kHz mono OGG/Opus (~15 kB), speech-like
(a gliding harmonic voice with syllable envelopes and breath noise). Opus encoding costs ~40 ms a
clip here, so a pool of distinct recordings is encoded once and each queued clip is one of them
with its own Ogg bitstream serial number (every page rewritten, CRCs recomputed): valid, distinct
files (distinct sha256), decoded by the client like any other.

1. `annotator checkout --count 500` (100 with --quick) as a real subprocess with its own
   ANNOTATOR_HOME: wall time from spawn to exit (lease, download, sha256 check, encrypt, fsync),
   and that process's peak RSS (its VmHWM, sampled).
2. A second checkout brings the cache to 5,000 clips (1,000 with --quick); its peak RSS too.
3. Client RSS with that cache: the real TUI (`launch.build_services` + `AnnotatorApp`, headless
   through Textual's Pilot, muted audio) started in its own process over the 5,000 cached clips and
   live leases, until the first clip is on screen and decoded from the cache; VmHWM (peak) and
   VmRSS from /proc/self/status. The target applies to the peak.

Run: `python -m bench.offline_bench [--quick]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.harness import client_args, own_mb, proc_status_mb, wait_for_clip
from bench.results import Figure
from bench.server_bench import running_server

RATE = 16_000
SECONDS = 4.0
POOL = 48
CHECKOUT_TARGET_S = 30.0
#: What the checkout (verify, encrypt, cache, store, fsync) may cost over a bare download.
CHECKOUT_RATIO_TARGET = 3.0
RSS_TARGET_MB = 150.0
ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ realistic clips


def _voice(i: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Four seconds of something speech-shaped: pitch glides, formant-ish harmonics, syllables."""
    rng = np.random.default_rng(1000 + i)
    t = np.arange(int(RATE * SECONDS)) / RATE
    f0 = 110 + 90 * rng.random() + 25 * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(
        (rng.uniform(0.2, 1.0) / k) * np.sin(k * phase + rng.uniform(0, 6.3)) for k in range(1, 12)
    )
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.5) * t + rng.uniform(0, 6.3)), 0, 1)
    breath = rng.standard_normal(t.size) * 0.02
    x = 0.25 * voiced * syllables**1.5 + breath
    return (x / max(1.0, float(np.abs(x).max()) * 1.2)).astype(np.float32)


def _opus(i: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _voice(i), RATE, format="OGG", subtype="OPUS")
    return buf.getvalue()


_BITREV = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, init 0, not reflected, no final xor) via zlib: reflect the
    bytes, take zlib's reflected CRC with its init/xor-out cancelled, reflect the result."""
    data = page.translate(_BITREV)
    reflected = zlib.crc32(data) ^ zlib.crc32(bytes(len(data)))
    return int(f"{reflected:032b}"[::-1], 2)


def _with_serial(ogg: bytes, serial: int) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(ogg):
        if ogg[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        nsegs = ogg[pos + 26]
        end = pos + 27 + nsegs + sum(ogg[pos + 27 : pos + 27 + nsegs])
        page = bytearray(ogg[pos:end])
        page[14:18] = serial.to_bytes(4, "little")
        page[22:26] = bytes(4)
        page[22:26] = _ogg_crc(bytes(page)).to_bytes(4, "little")
        out += page
        pos = end
    return bytes(out)


def prefill(root: Path, clips: int) -> tuple[str, float]:
    """Queue `clips` distinct Opus clips; returns an annotator token and the mean clip size."""
    from api.models import Role
    from api.server.records import NewClip
    from api.server.sqlite_repo import SqliteRepository

    pool = [_opus(i) for i in range(POOL)]
    check, rate = sf.read(io.BytesIO(_with_serial(pool[0], 12345)), dtype="int16")
    if rate != RATE or len(check) < RATE * SECONDS * 0.95:
        raise RuntimeError("re-serialised Opus clip does not decode")
    repo = SqliteRepository(root / "queue.db", root / "data")
    total = 0
    try:
        for i in range(clips):
            audio = _with_serial(pool[i % POOL], 0x5EED0000 + i)
            total += len(audio)
            clip_id = repo.add_clip(
                NewClip(
                    sha256=hashlib.sha256(audio).hexdigest(),
                    audio=audio,
                    media_type="audio/ogg",
                    duration_s=SECONDS,
                    sample_rate=RATE,
                    channels=1,
                    locale="en-US",
                    source_name=f"offline_{i:05d}.opus",
                )
            )
            if clip_id is None:
                raise RuntimeError(f"clip {i} was taken for a duplicate")
        return repo.create_token("offline", Role.ANNOTATOR), total / clips
    finally:
        repo.close()


# ------------------------------------------------------------------ processes


def _client_env(home: Path, url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_")}
    env.update(ANNOTATOR_HOME=str(home), ANNOTATOR_SERVER=url, ANNOTATOR_TOKEN=token)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run_measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code. The peak is the process's own VmHWM, sampled
    every 5 ms until it exits (monotonic, so the last sample is the peak up to its final 5 ms).
    Not wait4's ru_maxrss: that one also carries the high-water mark of the forking parent's
    memory image (the kernel records it at exec), i.e. this benchmark's own size."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0.0
        while proc.poll() is None:
            hwm = proc_status_mb("VmHWM", proc.pid)
            if hwm is not None:
                peak = max(peak, hwm)
            time.sleep(0.005)
        took = time.perf_counter() - t0
    return took, peak, int(proc.returncode)


def _checkout(home: Path, url: str, token: str, count: int, log: Path) -> tuple[float, float]:
    script = Path(sys.executable).parent / "annotator"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "annotator.cli"]
    took, peak, code = _run_measured(
        [*cmd, "checkout", "--count", str(count)], _client_env(home, url, token), log
    )
    if code != 0:
        raise RuntimeError(f"checkout --count {count} exited {code}: {log.read_text()[-2000:]}")
    return took, peak


def _raw_download_child(count: int, page: int, threads: int) -> None:
    """The floor of a checkout (runs as its own process, like the checkout): lease in the same
    pages and download with the same number of threads through a bare httpx client, checking
    each clip's sha256, keeping nothing (no decryption key, no cache, no store, no fsync)."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    url, token = os.environ["ANNOTATOR_SERVER"], os.environ["ANNOTATOR_TOKEN"]
    got = 0
    with (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
        ThreadPoolExecutor(threads) as pool,
    ):

        def fetch(lease: dict[str, Any]) -> bool:
            r = client.get(f"/v1/leases/{lease['lease_id']}/audio")
            return r.status_code == 200 and (
                hashlib.sha256(r.content).hexdigest() == lease["clip"]["sha256"]
            )

        while got < count:
            r = client.post("/v1/leases", json={"count": min(page, count - got)})
            leases = r.json()["leases"]
            if not leases:
                raise SystemExit(f"the queue ran dry after {got} clips")
            if not all(pool.map(fetch, leases)):
                raise SystemExit("a clip failed to download or verify")
            got += len(leases)


def _raw_download(home: Path, url: str, token: str, count: int, log: Path) -> float:
    from annotator.sync_cli import DOWNLOAD_THREADS
    from api.models import MAX_LEASE_COUNT

    cmd = [sys.executable, "-m", "bench.offline_bench", "--raw-download"]
    cmd += [str(count), str(MAX_LEASE_COUNT), str(DOWNLOAD_THREADS)]
    took, _, code = _run_measured(cmd, _client_env(home, url, token), log)
    if code != 0:
        raise RuntimeError(f"raw download of {count} exited {code}: {log.read_text()[-2000:]}")
    return took


def _tui_child(out: Path) -> None:
    """Runs in its own process: the TUI's start over the full cache, then its memory."""
    from annotator.app import AnnotatorApp
    from annotator.services import build_services

    args = client_args()
    services = build_services(args)
    services.start()
    leases = services.store.counts()["leases"]  # a COUNT, not 5,000 parsed leases of our own
    cached = len(services.cache.entries()) if services.cache is not None else 0
    result: dict[str, Any] = {}

    async def drive() -> None:
        app = AnnotatorApp(services)
        async with app.run_test(size=(100, 32)) as pilot:
            shown = (await wait_for_clip(pilot, app, 60)).current
            assert shown is not None
            await pilot.press(*"turn on the lights")  # a little typing, a draft save
            await pilot.pause(1.2)
            result.update(
                rss_mb=own_mb("VmRSS"),
                hwm_mb=own_mb("VmHWM"),
                clip_from_cache=shown.lease.clip.clip_id in (services.cache or ()),
                draft=services.store.load_draft(shown.lease.lease_id) is not None,
            )

    try:
        asyncio.run(drive())
    finally:
        services.shutdown()
    out.write_text(json.dumps({**result, "leases": leases, "cached": cached}))


def _tui_rss(home: Path, url: str, token: str, root: Path) -> dict[str, Any]:
    out = root / "tui.json"
    cmd = [sys.executable, "-m", "bench.offline_bench", "--tui-child", str(out)]
    took, peak, code = _run_measured(cmd, _client_env(home, url, token), root / "tui.log")
    if code != 0 or not out.exists():
        raise RuntimeError(f"TUI child exited {code}: {(root / 'tui.log').read_text()[-3000:]}")
    data: dict[str, Any] = json.loads(out.read_text())
    data.update(wall_s=took, sampled_peak_mb=peak)
    return data


# ------------------------------------------------------------------ entry points


def figures(quick: bool) -> list[Figure]:
    first = 100 if quick else 500
    total = 1_000 if quick else 5_000
    size = " (quick size)" if quick else ""
    t0 = time.monotonic()

    def step(what: str) -> None:
        print(f"  offline: {what} at {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-offline-") as tmp:
        root = Path(tmp)
        token, mean_bytes = prefill(root, total + first + 10)
        step(f"{total + first + 10} clips queued on the server")
        home = root / "home"
        # One person checks out hundreds of clips: above the default per-person lease cap.
        cap = ("--max-live-leases", str(total + first + 10))
        with running_server(root, workers=1, extra=cap) as url:
            step("server up")
            raw_s = _raw_download(root / "raw-home", url, token, first, root / "raw.log")
            step(f"raw download {first}")
            took, peak_first = _checkout(home, url, token, first, root / "checkout1.log")
            step(f"checkout {first}")
            rest_s, peak_full = _checkout(home, url, token, total - first, root / "checkout2.log")
            step(f"checkout {total - first} more")
            tui = _tui_rss(home, url, token, root)
            step("TUI start measured")
        cached = len(list(home.rglob("*.clip")))
        cache_mb = sum(p.stat().st_size for p in home.rglob("*.clip")) / 1e6
    if cached != total or tui["cached"] != total or tui["leases"] < total:
        raise RuntimeError(f"expected {total} cached clips and leases, got {cached} / {tui}")
    if not (tui["clip_from_cache"] and tui["draft"]):
        raise RuntimeError(f"the TUI did not start from the cache and save a draft: {tui}")
    clip = f"4 s 16 kHz OGG/Opus clips (~{mean_bytes / 1000:.0f} kB)"
    return [
        Figure(
            "checkout of 500 clips",
            took,
            "s",
            CHECKOUT_RATIO_TARGET,
            "max",
            f"`annotator checkout --count {first}`{size}: real subprocess, {clip}, spawn → exit; "
            f"{first / took:.0f} clips/s; that process peaked at {peak_first:.0f} MB RSS; "
            f"issue 4's absolute target: ≤ {CHECKOUT_TARGET_S:.0f} s",
            floor=raw_s,
            floor_what=f"a bare httpx process leasing and downloading {first} other clips in the "
            "same pages with the same threads, sha256 checked, nothing kept; spawn → exit",
            against="ratio",
        ),
        Figure(
            "client RSS with 5,000 cached clips",
            tui["hwm_mb"],
            "MB",
            RSS_TARGET_MB,
            "max",
            f"{total:,} cached clips{size} ({cache_mb:.0f} MB encrypted) and live leases; the real "
            f"TUI process (build_services + AnnotatorApp headless, muted) until its first clip is "
            f"on screen from the cache and a draft is saved: peak (VmHWM) {tui['hwm_mb']:.0f} MB, "
            f"now (VmRSS) {tui['rss_mb']:.0f} MB",
            no_floor="a ceiling on memory (the import floor's RSS is in the TUI suite)",
        ),
        Figure(
            "checkout peak RSS at 5,000 cached clips",
            peak_full,
            "MB",
            RSS_TARGET_MB,
            "max",
            f"the second `annotator checkout --count {total - first}`{size} (cache filled to "
            f"{total:,}) took {rest_s:.1f} s; peak RSS (VmHWM) of that process",
            no_floor="a ceiling on memory",
        ),
    ]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--tui-child":
        _tui_child(Path(sys.argv[2]))
        return
    if len(sys.argv) > 4 and sys.argv[1] == "--raw-download":
        _raw_download_child(*(int(a) for a in sys.argv[2:5]))
        return
    from bench.results import print_table

    print_table(figures("--quick" in sys.argv))


if __name__ == "__main__":
    main()
