"""Server figures, each beside its floor in the same run: one idle annotator's cycle (lease → audio
→ submit), and throughput and latency with 100 annotators, for every server configuration.

A configuration is the server's command line: the database (a SQLite file or a PostgreSQL URL on
a temporary cluster) and `--workers N`. Each one whose options the installed `annotator serve
--help` offers is run; one it does not offer (or whose database cannot be set up here) is reported
as "not run: <reason>". The floor of a configuration is `bench.floor_app` (a bare ASGI callable,
the same three requests, the same durable writes on the same kind of database) under the same
uvicorn options and the same number of workers; see that module.

Both are real processes on loopback, filled before they start (the server through the same wiring
`annotator token create` uses, so the timed part is only HTTP traffic), and driven by the same
client: aiohttp, with the load spread over separate generator processes (httpx's async client
saturates a core at ~50 cycles/s here) whose own CPU use is reported, so a generator-bound figure
is visible as such. The idle cycles alternate between the floor and the server in blocks, so a
change in the machine's load during the run hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import inspect
import io
import multiprocessing as mp
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import soundfile as sf

from bench.harness import free_port, pct
from bench.results import Figure, loadavg

if TYPE_CHECKING:
    from api.server.records import NewClip
    from tests.fixtures.postgres import TempCluster

ROOT = Path(__file__).resolve().parents[1]

#: aiohttp generator processes: together they use ~0.35 of a core at ~1,000 cycles/s (reported
#: beside the figure), so two keep each generator's own event loop far from saturation.
LOAD_GENERATORS = 2
#: Every annotator runs this long before cycles count (first connections, token look-ups).
LOAD_WARMUP_S = 2.0
LOAD_ANNOTATORS = 100
#: Cycles/s each side's queue is first filled for, and the least rate it is topped up for before
#: a round (`measure`: 1.5x the fastest rate seen). A run that empties a queue shows as errors:
#: "lease 200 {'leases': []}".
FILL_RATE = 1500
IDLE_BLOCK = 20
#: Idle cycles timed per side: a p99 of 200 was the second-slowest cycle (one scheduler hiccup
#: decided it, 1.17-1.72x across runs of one code); of 1,000 it is the tenth.
IDLE_CYCLES = 1000
#: Cycles each side runs before the idle cycles are timed.
IDLE_WARMUP = 10

IDLE_RATIO_TARGET = 1.5
LOAD_RATIO_TARGET = 0.6
BEST_RATE_TARGET = 600.0
BEST_P99_TARGET_MS = 200.0
#: The paced load: the issue's 600 cycles/s (twice 10,000 annotators doing 1,000 clips in a
#: day's shifts) offered by the same 100 annotators, each starting a cycle every 100/600 s.
PACED_RATE = BEST_RATE_TARGET

Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class ServerConfig:
    backend: Backend
    workers: int

    @property
    def label(self) -> str:
        return f"{self.backend} ×{self.workers}"


CONFIGS = (
    ServerConfig("sqlite", 1),
    ServerConfig("sqlite", 2),
    ServerConfig("postgresql", 1),
    ServerConfig("postgresql", 2),
)


# ------------------------------------------------------------------ clips and queues


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


def _bench_clips(clips: int, start: int = 0) -> Iterator[NewClip]:
    from api.server.records import NewClip

    for i in range(start, start + clips):
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


def _settled(value: Any) -> Any:
    """A repository call's result, awaited if the repository is asynchronous."""
    return asyncio.run(value) if inspect.iscoroutine(value) else value


def open_server_repo(db: str, data: Path) -> Any:
    """The server's repository for `--db db --data data`, opened the way `annotator token create`
    and `ingest` open it (so a database URL works here exactly when it works there)."""
    from api.server import commands

    settings = commands._settings(argparse.Namespace(db=db, data=str(data)))
    return commands._open_repo(settings)


def prepare(
    root: Path, clips: int, annotators: int, db: str | None = None, start: int = 0
) -> list[str]:
    """Queue `clips` distinct tiny clips (from the `start`-th) and make one annotator token per
    simulated person, in the database `db` (default: root/queue.db). Through `add_clips`, as a
    bulk ingest would: durable per batch of files, not per file."""
    from api.models import Role

    repo = open_server_repo(db or str(root / "queue.db"), root / "data")
    try:
        added = _settled(repo.add_clips(_bench_clips(clips, start)))
        if None in added:
            raise RuntimeError("bench clips must all be distinct")
        people = range(annotators)
        return [_settled(repo.create_token(f"bench{i}", Role.ANNOTATOR)) for i in people]
    finally:
        _settled(repo.close())


def prepare_floor(root: Path, clips: int, annotators: int, db: str, start: int = 0) -> list[str]:
    from bench import floor_app

    def audio() -> Iterator[tuple[str, bytes]]:
        for i in range(start, start + clips):
            wav = _tiny_wav(i)
            yield hashlib.sha256(wav).hexdigest(), wav

    return floor_app.prepare(db, root / "floor-audio", audio(), annotators)


# ------------------------------------------------------------------ processes


def annotator_command() -> list[str]:
    script = Path(sys.executable).parent / "annotator"
    return [str(script)] if script.exists() else [sys.executable, "-m", "annotator.cli"]


@functools.cache
def serve_help() -> str:
    done = subprocess.run(
        [*annotator_command(), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr


def unsupported(config: ServerConfig, help_text: str) -> str:
    """Why the installed `annotator serve` cannot run `config` ("" when it can)."""
    if config.workers > 1 and "--workers" not in help_text:
        return "the installed `annotator serve --help` has no --workers"
    if config.backend == "postgresql" and "postgresql" not in help_text.lower():
        return "the installed `annotator serve --help` offers no postgresql:// for --db"
    return ""


@contextmanager
def _process(cmd: list[str], log_path: Path, port: int) -> Iterator[str]:
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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
                raise RuntimeError(f"{cmd[0]} did not start: " + log_path.read_text()[-2000:])
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def running_server(
    root: Path, workers: int = 1, db: str | None = None, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """`annotator serve` on a free loopback port over `db` (default root/queue.db), plus
    `extra` flags."""
    port = free_port()
    cmd = [
        *annotator_command(),
        "serve",
        "--db",
        db or str(root / "queue.db"),
        "--data",
        str(root / "data"),
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra,
    ]
    with _process(cmd, root / "server.log", port) as url:
        yield url


@contextmanager
def running_floor(root: Path, workers: int, db: str) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.floor_app", "--db", db]
    cmd += ["--audio", str(root / "floor-audio"), "--port", str(port), "--workers", str(workers)]
    with _process(cmd, root / "floor.log", port) as url:
        yield url


class Databases:
    """Where each run's database lives: a file under its own directory, or a fresh database on
    one temporary PostgreSQL cluster started on first use (and its failure kept as the reason
    every PostgreSQL configuration is not run)."""

    def __init__(self, stack: ExitStack, base: Path) -> None:
        self.stack = stack
        self.base = base
        self.cluster: TempCluster | None = None
        self.pg_error = ""
        self.count = 0

    def new(self, backend: Backend, root: Path) -> str:
        self.count += 1
        if backend == "sqlite":
            return str(root / "queue.db")
        if self.pg_error:
            raise RuntimeError(self.pg_error)
        from tests.fixtures import postgres

        if self.cluster is None:
            try:
                import psycopg  # noqa: F401 - the floor and the database set-up need it

                # Its own directory under /tmp: the `postgres` user cannot enter ours (0700).
                pg_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
                pg_dir.chmod(0o755)  # the cluster's own directory inside is `postgres`'s
                self.stack.callback(shutil.rmtree, pg_dir, True)
                self.cluster = postgres.start_temp_cluster(pg_dir)
            except Exception as e:
                self.pg_error = f"no PostgreSQL cluster: {type(e).__name__}: {e}"[:300]
                raise RuntimeError(self.pg_error) from e
            self.stack.callback(self.cluster.stop)
        return self.cluster.new_database()


# ------------------------------------------------------------------ the client


@dataclass
class _GenResult:
    cycles: int = 0
    #: Cycles that went through, warm-up included: the clips this generator used up.
    done: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    first_error: str = ""


async def _cycle(session: Any, url: str, token: str, i: int) -> str:
    """One lease → audio → submit; "" when it went through, else what failed."""
    auth = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{url}/v1/leases", json={"count": 1}, headers=auth) as r:
        body = await r.json()
    leases = body.get("leases") or []
    if not leases:
        return f"lease {r.status} {str(body)[:200]}"
    lease = leases[0]
    async with session.get(f"{url}/v1/leases/{lease['lease_id']}/audio", headers=auth) as r:
        data = await r.read()
        if r.status != 200 or not data:
            return f"audio {r.status} {data[:200]!r}"
    ann = {
        "lease_id": lease["lease_id"],
        "fence": lease["fence"],
        "transcript": f"what's the weather tomorrow {i}",
        "intent": "weather_query",
        "flags": [],
    }
    hdrs = {**auth, "Idempotency-Key": uuid.uuid4().hex}
    async with session.post(f"{url}/v1/annotations", json=ann, headers=hdrs) as r:
        data = await r.read()
        if r.status not in (200, 201):
            return f"submit {r.status} {data[:200]!r}"
    return ""


Cycle = Callable[[int], Awaitable[str]]


async def _attempt(cycle: Cycle, k: int, out: _GenResult) -> bool:
    """Run cycle `k`; a failure (its message, or the client's exception) is counted in `out`."""
    import aiohttp

    try:
        failed = await cycle(k)
    except (aiohttp.ClientError, TimeoutError) as e:
        failed = f"{type(e).__name__}: {e}"
    if failed:
        out.errors += 1
        out.first_error = out.first_error or failed
        return False
    out.done += 1
    return True


async def _annotator_loop(
    session: Any, url: str, token: str, measure_from: float, deadline: float, out: _GenResult
) -> None:
    """Closed loop: the next cycle starts when the last one ends (no thinking time), so the
    rate is what the server can do and the latency is mostly queueing: with N annotators,
    mean latency = N / rate (Little's law)."""
    cycle = functools.partial(_cycle, session, url, token)
    i = 0
    while (started := time.monotonic()) < deadline:
        i += 1
        t0 = time.perf_counter()
        if not await _attempt(cycle, i, out):
            await asyncio.sleep(0.05)
            continue
        if started >= measure_from:  # not during the warm-up
            out.latencies_ms.append((time.perf_counter() - t0) * 1000)
            out.cycles += 1


async def paced_loop(
    cycle: Cycle,
    first_due: float,
    interval: float,
    measure_from: float,
    deadline: float,
    out: _GenResult,
) -> None:
    """Open loop, as people arrive: cycle k is due at `first_due + k * interval` whether or not
    the server kept up. One person does one cycle at a time, so a late cycle starts as soon as
    the last one ends, and its latency counts from when it was due: a slow server's queue shows
    in the figure instead of thinning the arrivals (no coordinated omission)."""
    k = 0
    while (due := first_due + k * interval) < deadline:
        k += 1
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if await _attempt(cycle, k, out) and due >= measure_from:
            out.latencies_ms.append((time.monotonic() - due) * 1000)
            out.cycles += 1


def _run_loop(main: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(main)
    except ImportError:
        return asyncio.run(main)


def _generator_process(
    url: str,
    tokens: list[str],
    start_at: float,
    seconds: float,
    q: mp.Queue[_GenResult],
    interval: float | None = None,
    seed: int = 0,
) -> None:
    import random

    import aiohttp

    async def main() -> _GenResult:
        out = _GenResult()
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

            if interval is None:
                loops = [
                    _annotator_loop(session, url, t, measure_from, deadline, out) for t in tokens
                ]
            else:  # each person's first cycle at a random point of the first interval
                rng = random.Random(seed)
                start = time.monotonic()
                loops = [
                    paced_loop(
                        functools.partial(_cycle, session, url, t),
                        start + rng.uniform(0, interval),
                        interval,
                        measure_from,
                        deadline,
                        out,
                    )
                    for t in tokens
                ]
            await asyncio.gather(cpu_meter(), *loops)
        return out

    q.put(_run_loop(main()))


@dataclass
class Load:
    rate: float
    p50: float
    p99: float
    errors: int
    first_error: str
    generator_cores: float
    loadavg: str

    def describe(self) -> str:
        error = f" (first: {self.first_error[:120]})" if self.first_error else ""
        return (
            f"p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms, {self.errors} errors{error}, "
            f"generators used {self.generator_cores:.2f} cores, loadavg {self.loadavg}"
        )


def drive_load(
    url: str, tokens: list[str], seconds: float, paced_rate: float | None = None
) -> list[_GenResult]:
    """One round: every token an annotator cycling for LOAD_WARMUP_S + `seconds`, back to back
    (closed loop), or, with `paced_rate`, offered that many cycles/s in all (open loop)."""
    interval = len(tokens) / paced_rate if paced_rate else None
    ctx = mp.get_context("spawn")
    q: mp.Queue[_GenResult] = ctx.Queue()
    start_at = time.time() + 2.0
    shards = [tokens[i::LOAD_GENERATORS] for i in range(LOAD_GENERATORS)]
    procs = [
        ctx.Process(target=_generator_process, args=(url, shard, start_at, seconds, q, interval, n))
        for n, shard in enumerate(shards)
    ]
    for p in procs:
        p.start()
    results: list[_GenResult] = []
    deadline = time.monotonic() + seconds + LOAD_WARMUP_S + 120
    while len(results) < len(procs):
        try:
            results.append(q.get(timeout=1))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                codes = [p.exitcode for p in procs]
                for p in procs:
                    p.kill()
                raise RuntimeError(f"load generator failed (exit codes {codes})") from None
    for p in procs:
        p.join(10)
    return results


def combine(rounds: list[list[_GenResult]], seconds: float) -> Load:
    """The rounds of one side as one figure: `seconds` measured per round."""
    results = [r for one in rounds for r in one]
    lat = [x for r in results for x in r.latencies_ms]
    total = seconds * len(rounds)
    return Load(
        rate=sum(r.cycles for r in results) / total,
        p50=pct(lat, 50),
        p99=pct(lat, 99),
        errors=sum(r.errors for r in results),
        first_error=next((r.first_error for r in results if r.first_error), ""),
        generator_cores=sum(r.cpu_s for r in results) / total,
        loadavg=loadavg(),
    )


def idle_cycles(urls: dict[str, tuple[str, str]], cycles: int) -> dict[str, list[float]]:
    """One annotator's cycles, one at a time, against each of `urls` (name → (url, token)) in
    alternating blocks of IDLE_BLOCK after IDLE_WARMUP warm-up cycles each; latencies in ms by
    name."""
    import aiohttp

    async def main() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {name: [] for name in urls}
        async with aiohttp.ClientSession() as session:
            for url, token in urls.values():
                for i in range(IDLE_WARMUP):
                    await _cycle(session, url, token, i)
            done = 0
            while done < cycles:
                block = min(IDLE_BLOCK, cycles - done)
                for name, (url, token) in urls.items():
                    for i in range(block):
                        t0 = time.perf_counter()
                        failed = await _cycle(session, url, token, i)
                        if failed:
                            raise RuntimeError(f"idle cycle against the {name}: {failed}")
                        times[name].append((time.perf_counter() - t0) * 1000)
                done += block
        return times

    result: dict[str, list[float]] = _run_loop(main())
    return result


# ------------------------------------------------------------------ figures


@dataclass
class Measured:
    config: ServerConfig
    #: Latencies and loads by "floor" / "server"; the server's are missing when it did not run.
    idle: dict[str, list[float]] = field(default_factory=dict)
    load: dict[str, Load] = field(default_factory=dict)
    #: The same annotators offered PACED_RATE cycles/s (open loop), by side.
    paced: dict[str, Load] = field(default_factory=dict)
    not_run: str = ""
    failed: str = ""


@dataclass
class _Queue:
    """One side's queue: how many clips it was given and how many cycles used one, so it can be
    topped up before a round (a faster machine empties any fixed fill: a run that runs out
    shows as errors, "lease 200 {'leases': []}")."""

    url: str
    tokens: list[str]
    add: Callable[[int, int], object]  # (count, first index) → clips queued
    queued: int = 0
    used: int = 0

    def ensure(self, clips: int) -> None:
        if self.queued - self.used < clips:
            more = 2 * clips
            self.add(more, self.queued)
            self.queued += more


def measure(
    config: ServerConfig,
    dbs: Databases,
    base: Path,
    cycles: int,
    seconds: float,
    rounds: int = 1,
    fill_rate: float = FILL_RATE,
    paced_rounds: int = 1,
) -> Measured:
    """The floor of `config`, and the server where it can run (else `not_run` says why).

    Both processes are up together, each on its own queue, and are driven in turn, never at
    once: the idle cycles in alternating blocks, then the load in `rounds` alternating rounds of
    `seconds`, then `paced_rounds` of the paced load, so a change in the machine's load during
    the run falls on both sides alike. Before each round a side's queue is topped up for 1.5×
    the fastest rate either side has shown so far (at least `fill_rate`); the clips are added
    between rounds, not timed."""
    out = Measured(config, not_run=unsupported(config, serve_help()))
    tag = f"{config.backend}{config.workers}"
    try:
        dbs.new(config.backend, base)  # a cluster to run on, or the reason there is none
    except Exception as e:
        return Measured(config, not_run=str(e))
    first = int(fill_rate * (seconds + LOAD_WARMUP_S)) + cycles + 40
    with ExitStack() as stack:
        floor_root = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=base)))
        floor_db = dbs.new(config.backend, floor_root)
        floor_tokens = prepare_floor(floor_root, first, LOAD_ANNOTATORS, floor_db)
        floor_url = stack.enter_context(running_floor(floor_root, config.workers, floor_db))
        sides = {
            "floor": _Queue(
                floor_url,
                floor_tokens,
                lambda n, at: prepare_floor(floor_root, n, 0, floor_db, at),
                first,
            )
        }
        if not out.not_run:
            server_root = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=base)))
            try:
                db = dbs.new(config.backend, server_root)
                tokens = prepare(server_root, first, LOAD_ANNOTATORS, db)
                url = stack.enter_context(running_server(server_root, config.workers, db))
            except Exception as e:  # this configuration cannot be set up here
                out.not_run = f"{type(e).__name__}: {e}"[:300]
            else:
                sides["server"] = _Queue(
                    url, tokens, lambda n, at: prepare(server_root, n, 0, db, at), first
                )
        _step(f"{tag}: {first} clips queued on each side, processes up")
        out.idle = idle_cycles({n: (q.url, q.tokens[0]) for n, q in sides.items()}, cycles)
        for q in sides.values():
            q.used += cycles + IDLE_WARMUP
        _step(f"{tag}: idle cycles")
        fastest = fill_rate

        def one_round(q: _Queue, paced_rate: float | None) -> list[_GenResult]:
            nonlocal fastest
            q.ensure(int(1.5 * (paced_rate or fastest) * (seconds + LOAD_WARMUP_S)))
            results = drive_load(q.url, q.tokens, seconds, paced_rate)
            q.used += sum(r.done for r in results)
            fastest = max(fastest, sum(r.cycles for r in results) / seconds)
            return results

        done: dict[str, list[list[_GenResult]]] = {name: [] for name in sides}
        for r in range(rounds):
            for name, q in sides.items():
                done[name].append(one_round(q, None))
                _step(f"{tag}: load round {r + 1} of {rounds} on the {name}")
        paced: dict[str, list[list[_GenResult]]] = {name: [] for name in sides}
        for r in range(paced_rounds):
            for name, q in sides.items():
                paced[name].append(one_round(q, PACED_RATE))
                _step(f"{tag}: paced round {r + 1} of {paced_rounds} on the {name}")
    out.load = {name: combine(runs, seconds) for name, runs in done.items()}
    out.paced = {name: combine(runs, seconds) for name, runs in paced.items()}
    return out


def _step(what: str) -> None:
    print(f"  server: {what}", file=sys.stderr, flush=True)


_FLOOR = "bare ASGI app (bench/floor_app.py), same 3 requests and durable writes"


def figures_for(m: Measured, cycles: int, seconds: float, rounds: int) -> list[Figure]:
    label = m.config.label
    floor_what = f"{_FLOOR}, {label}" if m.not_run else "the same, for this configuration"
    if "server" not in m.load:
        idle_f, lf = m.idle.get("floor"), m.load.get("floor")
        floor_detail = f"floor under load: {lf.describe()}" if lf else ""
        return [
            Figure(
                f"{label}: idle cycle p50",
                None,
                "ms",
                IDLE_RATIO_TARGET,
                "max",
                floor=pct(idle_f, 50) if idle_f else None,
                floor_what=f"{_FLOOR}, {label}",
                against="ratio",
                not_run=m.not_run,
                detail=m.failed,
            ),
            Figure(
                f"{label}: 100 annotators",
                None,
                "/s",
                LOAD_RATIO_TARGET,
                "min",
                floor_detail,
                floor=lf.rate if lf else None,
                floor_what="the same, for this configuration",
                against="ratio",
                not_run=m.not_run,
            ),
            paced_figure(m, seconds),
        ]
    idle_s, idle_f = m.idle["server"], m.idle["floor"]
    ls, lf = m.load["server"], m.load["floor"]
    how = (
        f"{cycles} cycles, one annotator (aiohttp), alternating blocks of {IDLE_BLOCK} between "
        f"server and floor; server max {max(idle_s):.1f} ms"
    )
    load_how = (
        f"{LOAD_ANNOTATORS} annotators, {rounds} round(s) of {seconds:.0f} s after "
        f"{LOAD_WARMUP_S:.0f} s warm-up each, alternating between floor and server, "
        f"{LOAD_GENERATORS} aiohttp generator processes; server: {ls.describe()}; floor: "
        f"{lf.describe()}"
    )
    extra: dict[str, float | str] = {
        "server_errors": ls.errors,
        "floor_errors": lf.errors,
        "generator_cores": round(ls.generator_cores, 2),
        "loadavg": ls.loadavg,
    }
    return [
        Figure(
            f"{label}: idle cycle p50",
            pct(idle_s, 50),
            "ms",
            IDLE_RATIO_TARGET,
            "max",
            how,
            floor=pct(idle_f, 50),
            floor_what=f"{_FLOOR}, {label}",
            against="ratio",
        ),
        Figure(
            f"{label}: idle cycle p99",
            pct(idle_s, 99),
            "ms",
            IDLE_RATIO_TARGET,
            "max",
            "as above",
            floor=pct(idle_f, 99),
            floor_what=floor_what,
            against="ratio",
        ),
        Figure(
            f"{label}: 100 annotators",
            ls.rate,
            "/s",
            LOAD_RATIO_TARGET,
            "min",
            load_how,
            floor=lf.rate,
            floor_what=floor_what,
            against="ratio",
            extra=extra,
        ),
        Figure(
            f"{label}: 100 annotators p99",
            ls.p99,
            "ms",
            None,
            "info",
            f"under the load above, closed loop: with no time between cycles the latency is the "
            f"queue the {LOAD_ANNOTATORS} annotators make (mean = {LOAD_ANNOTATORS} ÷ rate, "
            "Little's law), so it falls only as the rate rises; the paced figure below is the "
            "latency at a given load",
            floor=lf.p99,
            floor_what=floor_what,
        ),
        paced_figure(m, seconds),
    ]


def paced_figure(m: Measured, seconds: float) -> Figure:
    """p99 of a cycle when the annotators offer PACED_RATE cycles/s (the issue's load)."""
    ps, pf = m.paced.get("server"), m.paced.get("floor")
    how = (
        f"{LOAD_ANNOTATORS} annotators each due to start a cycle every "
        f"{LOAD_ANNOTATORS / PACED_RATE * 1000:.0f} ms (open loop, as people arrive; latency "
        f"from when the cycle was due), {seconds:.0f} s after {LOAD_WARMUP_S:.0f} s warm-up"
    )
    if ps:
        how += f"; served {ps.rate:.0f}/s: {ps.describe()}"
    if pf:
        how += f"; floor served {pf.rate:.0f}/s: {pf.describe()}"
    # The issue's < 200 ms is for the best configuration (its own row below); here it is the
    # same load on every configuration, for comparison (an overloaded one shows its queue).
    return Figure(
        f"{m.config.label}: p99 at {PACED_RATE:.0f} cycles/s",
        ps.p99 if ps else None,
        "ms",
        None,
        "info",
        how,
        floor=pf.p99 if pf else None,
        floor_what=f"{_FLOOR}, {m.config.label}, the same paced load",
        not_run=m.not_run,
    )


def best_figures(measured: list[Measured]) -> list[Figure]:
    """The issue's absolute target on the configuration with the highest closed-loop rate:
    that rate (≥ 600 cycles/s) and the p99 when 600 cycles/s are offered (< 200 ms)."""
    ran = [m for m in measured if "server" in m.load]
    if not ran:
        return []
    best = max(ran, key=lambda m: m.load["server"].rate)
    ls, lf = best.load["server"], best.load["floor"]
    ps, pf = best.paced.get("server"), best.paced.get("floor")
    cores = os.cpu_count()
    why = (
        f"absolute target of issue 9 (twice 10,000 annotators doing 1,000 clips a day), on "
        f"{cores} cores, loadavg {ls.loadavg}"
    )
    floor_what = f"that configuration's floor ({_FLOOR})"
    return [
        Figure(
            f"best ({best.config.label}): cycles/s",
            ls.rate,
            "/s",
            BEST_RATE_TARGET,
            "min",
            why + "; closed loop, 100 annotators",
            floor=lf.rate,
            floor_what=floor_what,
        ),
        Figure(
            f"best ({best.config.label}): p99 at {PACED_RATE:.0f} cycles/s",
            ps.p99 if ps else None,
            "ms",
            BEST_P99_TARGET_MS,
            "max",
            "as above; the paced load (open loop, see its row)",
            floor=pf.p99 if pf else None,
            floor_what=floor_what,
        ),
    ]


def figures(
    quick: bool, configs: tuple[ServerConfig, ...] = CONFIGS, cycles: int | None = None
) -> list[Figure]:
    cycles = cycles or (40 if quick else IDLE_CYCLES)
    seconds, rounds = (3.0, 1) if quick else (5.0, 4)
    paced_rounds = 1 if quick else 2
    measured: list[Measured] = []
    with ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-server-")))
        dbs = Databases(stack, base)
        for config in configs:
            try:
                measured.append(
                    measure(config, dbs, base, cycles, seconds, rounds, paced_rounds=paced_rounds)
                )
            except Exception as e:  # one broken configuration must not hide the others
                traceback.print_exc()
                measured.append(Measured(config, failed=f"failed: {type(e).__name__}: {e}"))
    figs: list[Figure] = []
    for m in measured:
        figs += figures_for(m, cycles, seconds, rounds)
    return figs + best_figures(measured)


if __name__ == "__main__":
    from bench.results import print_table

    print_table(figures("--quick" in sys.argv))
