"""Server figures: one idle annotator's cycle latency, and throughput under 100 annotators.

The server is a real `annotator serve` process on loopback. Clips and tokens are written into its
database through the repository before it starts (what `annotator ingest` / `token create` do),
so the timed part is only HTTP traffic. The load generator runs in separate processes with aiohttp
(httpx's async client saturates a core at ~50 cycles/s here), and its own CPU use is reported so a
generator-bound figure is visible as such.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import multiprocessing as mp
import os
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from bench.harness import free_port, pct
from bench.results import Figure

if TYPE_CHECKING:
    from api.server.records import NewClip

ROOT = Path(__file__).resolve().parents[1]

#: `annotator serve --workers` for server_load. 1, like the CLI's default: with group commit one
#: process keeps the SQLite writer lock to itself and fsyncs groups of submits, while two processes
#: on these 2 cores contend for that lock (a waiting process's event loop stalls) and measured
#: lower throughput and a longer tail (see the PR notes for the side-by-side runs).
LOAD_WORKERS = 1
#: aiohttp generator processes: together they use ~0.35 of a core at ~1,000 cycles/s (reported
#: beside the figure), so two keep each generator's own event loop far from saturation.
LOAD_GENERATORS = 2
#: Every annotator runs this long before cycles count (first connections, token look-ups).
LOAD_WARMUP_S = 2.0


_TINY_RATE = 16_000
_TINY_SECONDS = 0.25


@functools.cache
def _tiny_wav_template() -> tuple[bytes, bytes]:
    """A quarter second of quiet noise as a 16-bit WAV: (header, samples)."""
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(int(_TINY_RATE * _TINY_SECONDS)) * 0.05).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, _TINY_RATE, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()
    return wav[:44], wav[44:]


def _tiny_wav(i: int) -> bytes:
    """The i-th distinct tiny clip: the template with `i` written into its first samples."""
    header, samples = _tiny_wav_template()
    return header + struct.pack("<Q", i) + samples[8:]


def _bench_clips(clips: int) -> Iterator[NewClip]:
    from api.server.records import NewClip

    for i in range(clips):
        audio = _tiny_wav(i)
        yield NewClip(
            sha256=hashlib.sha256(audio).hexdigest(),
            audio=audio,
            media_type="audio/wav",
            duration_s=_TINY_SECONDS,
            sample_rate=_TINY_RATE,
            channels=1,
            locale="en-US",
            source_name=f"bench_{i}.wav",
        )


def prepare(root: Path, clips: int, annotators: int) -> list[str]:
    """Queue `clips` distinct tiny clips and make one annotator token per simulated person.

    Through `add_clips`, as a bulk ingest would: durable per batch of files, not per file."""
    from api.models import Role
    from api.server.sqlite_repo import SqliteRepository

    repo = SqliteRepository(root / "queue.db", root / "data")
    try:
        added = repo.add_clips(_bench_clips(clips))
        if None in added:
            raise RuntimeError("bench clips must all be distinct")
        return [repo.create_token(f"bench{i}", Role.ANNOTATOR) for i in range(annotators)]
    finally:
        repo.close()


@contextmanager
def running_server(root: Path, workers: int) -> Iterator[str]:
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "annotator"),
        "serve",
        "--db",
        str(root / "queue.db"),
        "--data",
        str(root / "data"),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + (root / "server.log").read_text())
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ------------------------------------------------------------------ idle cycle


def server_cycle(cycles: int = 200) -> list[Figure]:
    from api.client import QueueClient, new_idempotency_key
    from api.models import AnnotationIn

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (token,) = prepare(root, cycles + 20, 1)
        with running_server(root, workers=1) as url, QueueClient(url, token) as client:
            times: list[float] = []
            for i in range(cycles + 10):
                t0 = time.perf_counter()
                (lease,) = client.lease(1).leases
                audio = client.audio(lease.lease_id)
                client.submit(
                    AnnotationIn(
                        lease_id=lease.lease_id,
                        fence=lease.fence,
                        transcript=f"turn on the lights {i}",
                        intent="iot_hue_lighton",
                    ),
                    new_idempotency_key(),
                )
                elapsed = (time.perf_counter() - t0) * 1000
                assert audio
                if i >= 10:  # warm-up: first connections, caches
                    times.append(elapsed)
    p50, p99 = pct(times, 50), pct(times, 99)
    detail = f"{cycles} cycles with the annotator's own QueueClient (httpx), lease→audio→submit"
    return [
        Figure("server_cycle p50", p50, "ms", 5.0, "max", detail),
        Figure("server_cycle p99", p99, "ms", 15.0, "max", detail),
    ]


# ------------------------------------------------------------------ load


@dataclass
class _GenResult:
    cycles: int
    errors: int
    latencies_ms: list[float]
    cpu_s: float
    first_error: str = ""


async def _annotator_loop(
    session: object, url: str, token: str, measure_from: float, deadline: float, out: _GenResult
) -> None:
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    auth = {"Authorization": f"Bearer {token}"}
    while (started := time.monotonic()) < deadline:
        t0 = time.perf_counter()
        try:
            async with session.post(f"{url}/v1/leases", json={"count": 1}, headers=auth) as r:
                body = await r.json()
            leases = body.get("leases") or []
            if not leases:
                out.errors += 1
                out.first_error = out.first_error or f"lease {r.status} {str(body)[:200]}"
                await asyncio.sleep(0.05)
                continue
            lease = leases[0]
            async with session.get(f"{url}/v1/leases/{lease['lease_id']}/audio", headers=auth) as r:
                data = await r.read()
                if r.status != 200:
                    out.errors += 1
                    out.first_error = out.first_error or f"audio {r.status} {data[:200]!r}"
                    continue
            ann = {
                "lease_id": lease["lease_id"],
                "fence": lease["fence"],
                "transcript": "what's the weather tomorrow",
                "intent": "weather_query",
                "flags": [],
            }
            hdrs = {**auth, "Idempotency-Key": uuid.uuid4().hex}
            async with session.post(f"{url}/v1/annotations", json=ann, headers=hdrs) as r:
                data = await r.read()
                if r.status not in (200, 201):
                    out.errors += 1
                    out.first_error = out.first_error or f"submit {r.status} {data[:200]!r}"
                    continue
        except (aiohttp.ClientError, TimeoutError) as e:
            out.errors += 1
            out.first_error = out.first_error or f"{type(e).__name__}: {e}"
            continue
        if started >= measure_from:  # not during the warm-up
            out.latencies_ms.append((time.perf_counter() - t0) * 1000)
            out.cycles += 1


def _generator_process(
    url: str, tokens: list[str], start_at: float, seconds: float, q: mp.Queue[_GenResult]
) -> None:
    import aiohttp

    async def main() -> _GenResult:
        out = _GenResult(0, 0, [], 0.0)
        conn = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(connector=conn) as session:
            while time.time() < start_at:
                await asyncio.sleep(0.01)
            measure_from = time.monotonic() + LOAD_WARMUP_S
            deadline = measure_from + seconds

            async def cpu_meter() -> None:
                await asyncio.sleep(LOAD_WARMUP_S)
                cpu0 = time.process_time()
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                out.cpu_s = time.process_time() - cpu0

            await asyncio.gather(
                cpu_meter(),
                *(_annotator_loop(session, url, t, measure_from, deadline, out) for t in tokens),
            )
        return out

    try:
        import uvloop

        result = uvloop.run(main())
    except ImportError:
        result = asyncio.run(main())
    q.put(result)


def server_load(
    seconds: float = 30.0,
    annotators: int = 100,
    generators: int = LOAD_GENERATORS,
    workers: int = LOAD_WORKERS,
) -> list[Figure]:
    expected_rate = 1800  # generous: clips must not run out during the run
    clips = int(expected_rate * (seconds + LOAD_WARMUP_S)) + 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t_prep = time.monotonic()
        tokens = prepare(root, clips, annotators)
        prep_s = time.monotonic() - t_prep
        with running_server(root, workers=workers) as url:
            ctx = mp.get_context("spawn")
            q: mp.Queue[_GenResult] = ctx.Queue()
            start_at = time.time() + 2.0
            shards = [tokens[i::generators] for i in range(generators)]
            procs = [
                ctx.Process(target=_generator_process, args=(url, shard, start_at, seconds, q))
                for shard in shards
            ]
            for p in procs:
                p.start()
            results = [q.get(timeout=seconds + LOAD_WARMUP_S + 120) for _ in procs]
            for p in procs:
                p.join(10)
    cycles = sum(r.cycles for r in results)
    errors = sum(r.errors for r in results)
    first_error = next((r.first_error for r in results if r.first_error), "")
    lat = [x for r in results for x in r.latencies_ms]
    gen_cpu = sum(r.cpu_s for r in results) / seconds  # cores' worth of CPU the generator used
    rate = cycles / seconds
    detail = (
        f"{annotators} annotators, {seconds:.0f} s after {LOAD_WARMUP_S:.0f} s warm-up, "
        f"server --workers {workers}, "
        f"{generators} aiohttp generator processes using {gen_cpu:.2f} of {os.cpu_count()} cores; "
        f"{errors} errors{' (first: ' + first_error + ')' if first_error else ''}; "
        f"setup {prep_s:.1f} s for {clips} clips"
    )
    return [
        Figure(
            "server_load cycles/s",
            rate,
            "cycles/s",
            600.0,
            "min",
            detail,
            extra={"generator_cpu_cores": round(gen_cpu, 2)},
        ),
        Figure("server_load cycle p50", pct(lat, 50), "ms", None, "info", "under the load above"),
        Figure("server_load cycle p99", pct(lat, 99), "ms", 200.0, "max", "under the load above"),
    ]


if __name__ == "__main__":
    from bench.results import print_table

    quick = "--quick" in sys.argv
    figs = server_cycle(100 if quick else 200)
    figs += server_load(seconds=5 if quick else 30)
    print_table(figs)
