"""What one annotator cycle (lease → audio → submit) costs the server, independent of the machine's
load: CPU time and database round trips, the server's app beside the bare floor app, in process.

    python -m bench.cycle_cost [--backend sqlite|postgresql] [--cycles N] [--profile FILE.html]

Both apps are called through ASGI directly (no sockets, no uvicorn, no client), one cycle after
another, so what is counted is the server's own work: CPU seconds of this process
(`time.process_time`) and, on PostgreSQL, of the database's processes too (read from /proc: the
work the round trips cause there), plus the round trips per request (from libpq's protocol trace:
each switch from sending to receiving is one). Wall-clock timings on a shared 2-core machine
swing with the other processes' load; CPU time and round trips barely move, so this is the tool
to find and prove a change to the hot paths, and `python -m bench --only server` the one to
report. `--profile` writes a pyinstrument profile of the server's cycles (pyinstrument is not a
dependency: `pip install pyinstrument`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Asgi = Callable[..., Awaitable[None]]
Message = MutableMapping[str, Any]

#: Cycles per timed block (the CPU figure is the least block).
BLOCK = 100
#: Cycles whose function calls are counted (after the timed ones).
CALL_CYCLES = 20
#: Cycles/s the queue is filled for under `--annotators` (clips must not run out).
MAX_RATE = 1500


async def asgi_call(
    app: Asgi, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One HTTP request straight into an ASGI app: (status, body)."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if body:
        raw_headers += [(b"content-type", b"application/json")]
        raw_headers += [(b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client never disconnects mid-request here
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def cycle(app: Asgi, token: str, i: int, marks: Callable[[str], None] | None = None) -> None:
    """The bench's cycle (`bench.server_bench._cycle`): the same requests and bodies."""
    auth = {"authorization": f"Bearer {token}"}
    status, raw = await asgi_call(app, "POST", "/v1/leases", auth, b'{"count": 1}')
    if marks:
        marks("claim")
    leases = json.loads(raw).get("leases") if status == 200 else None
    if not leases:
        raise RuntimeError(f"lease {status} {raw[:200]!r}")
    lease = leases[0]
    status, raw = await asgi_call(app, "GET", f"/v1/leases/{lease['lease_id']}/audio", auth)
    if marks:
        marks("audio")
    if status != 200 or not raw:
        raise RuntimeError(f"audio {status} {raw[:200]!r}")
    ann = {
        "lease_id": lease["lease_id"],
        "fence": lease["fence"],
        "transcript": f"what's the weather tomorrow {i}",
        "intent": "weather_query",
        "flags": [],
    }
    headers = {**auth, "idempotency-key": uuid.uuid4().hex}
    status, raw = await asgi_call(app, "POST", "/v1/annotations", headers, json.dumps(ann).encode())
    if marks:
        marks("submit")
    if status not in (200, 201):
        raise RuntimeError(f"submit {status} {raw[:200]!r}")


# ------------------------------------------------------------------ database processes' CPU


def _cluster_pids(data_dir: Path) -> list[int]:
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def _cpu_of(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


# ------------------------------------------------------------------ the two apps


def _server_app(db: str, root: Path, clips: int) -> tuple[Any, Any, str]:
    from api.models import Role
    from api.server.app import create_app
    from api.server.settings import ServerSettings
    from bench.server_bench import _bench_clips

    settings = ServerSettings(db_url=db, data_dir=root / "data", db_path=root / "queue.db")
    if db.startswith("postgresql"):
        from api.server.postgres_repo import PostgresRepository

        repo: Any = PostgresRepository(db, pool_max=1)
    else:
        from api.server.backends import open_repository

        repo = open_repository(settings.database_url, settings.data_dir)
    repo.add_clips(_bench_clips(clips))
    token = repo.create_token("bench", Role.ANNOTATOR)
    return create_app(settings, repo=repo), repo, token


def _floor_app(db: str, root: Path, clips: int) -> tuple[Any, str]:
    from bench import floor_app
    from bench.server_bench import prepare_floor

    (token,) = prepare_floor(root, clips, 1, db)
    return floor_app.FloorApp(floor_app.open_floor(db), root / "floor-audio"), token


def _count_calls(app: Asgi, token: str, start: int, cycles: int) -> float:
    """Python and C function calls per cycle (deterministic: the same code path, the same count)."""
    import sys

    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    async def run() -> None:
        sys.setprofile(profile)
        try:
            for i in range(cycles):
                await cycle(app, token, start + i)
        finally:
            sys.setprofile(None)

    asyncio.run(run())
    return calls / cycles


def _count_trips(app: Asgi, token: str, start: int, cycles: int, trips: Any) -> dict[str, float]:
    """Database round trips per request, traced (the trace's own cost kept out of the timing)."""
    counts: dict[str, int] = {"claim": 0, "audio": 0, "submit": 0}

    def mark(step: str) -> None:
        counts[step] += trips.take()

    async def run() -> None:
        trips.take()
        for i in range(cycles):
            await cycle(app, token, start + i, mark)

    asyncio.run(run())
    return {f"trips_{k}": v / cycles for k, v in counts.items()}


def _measure(
    app: Asgi,
    token: str,
    cycles: int,
    warmup: int,
    db_pids: Callable[[], list[int]],
    trips: Callable[[], Any] | None = None,
) -> dict[str, float]:
    """CPU per cycle as the least over blocks of `BLOCK` cycles (the machine's other load only
    ever adds), the database's CPU and wall time over all of them; then function calls and (given
    `trips`, which starts a `RoundTrips`) round trips per request, each over `CALL_CYCLES`."""

    async def run() -> dict[str, float]:
        for i in range(warmup):
            await cycle(app, token, i)
        blocks: list[float] = []
        db0, wall0 = _cpu_of(db_pids()), time.perf_counter()
        for b in range(0, cycles, BLOCK):
            cpu0 = time.process_time()
            n = min(BLOCK, cycles - b)
            for i in range(n):
                await cycle(app, token, warmup + b + i)
            blocks.append((time.process_time() - cpu0) / n)
        dbcpu, wall = _cpu_of(db_pids()) - db0, time.perf_counter() - wall0
        return {
            "cpu_us": min(blocks) * 1e6,
            "db_cpu_us": dbcpu / cycles * 1e6,
            "wall_us": wall / cycles * 1e6,
        }

    result = asyncio.run(run())
    start = warmup + cycles
    result["calls"] = _count_calls(app, token, start, CALL_CYCLES)
    counts = {"trips_claim": 0.0, "trips_audio": 0.0, "trips_submit": 0.0}
    if trips is not None:
        tracer = trips()
        try:
            counts = _count_trips(app, token, start + CALL_CYCLES, CALL_CYCLES, tracer)
        finally:
            tracer.stop()
    result.update(counts)
    return result


def _throughput(app: Asgi, token: str, annotators: int, seconds: float, start: int) -> float:
    """Cycles/s with `annotators` concurrent cycles in this one event loop (group commit groups
    their submits as under real load); the client's share of the CPU is the same for both apps."""

    async def run() -> float:
        done = 0
        deadline = time.perf_counter() + seconds

        async def annotator(n: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < deadline:
                await cycle(app, token, start + n * 100_000 + i)
                i += 1
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(annotator(n) for n in range(annotators)))
        return done / (time.perf_counter() - t0)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    from tests.fixtures.round_trips import RoundTrips, trace_pooled

    parser = argparse.ArgumentParser(prog="python -m bench.cycle_cost")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the server here")
    parser.add_argument("--only", choices=["server", "floor"], help="measure one side")
    parser.add_argument(
        "--annotators", type=int, default=0, help="also: cycles/s with this many at once"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="of that load")
    args = parser.parse_args(argv)
    load_clips = int(args.seconds * MAX_RATE) if args.annotators else 0
    clips = args.cycles + args.warmup + 2 * CALL_CYCLES + 10 + load_clips
    with tempfile.TemporaryDirectory(prefix="cycle-cost-") as tmp:
        root = Path(tmp)
        cluster: Any = None
        db_pids: Callable[[], list[int]] = list

        def new_db(name: str) -> str:
            if args.backend == "sqlite":
                return str(root / name / "queue.db")
            return str(cluster.new_database())

        if args.backend == "postgresql":
            from tests.fixtures.postgres import start_temp_cluster

            cluster = start_temp_cluster()
            db_pids = functools.partial(_cluster_pids, cluster.data_dir)
        try:
            results: dict[str, dict[str, float]] = {}
            if args.only != "floor":
                (root / "server").mkdir()
                app, repo, token = _server_app(new_db("server"), root / "server", clips)
                trips = None
                if args.backend == "postgresql":
                    trips = functools.partial(trace_pooled, repo)
                try:
                    if args.profile:
                        from pyinstrument import Profiler

                        profiler = Profiler(interval=0.0002, async_mode="disabled")
                        profiler.start()
                    results["server"] = _measure(
                        app, token, args.cycles, args.warmup, db_pids, trips
                    )
                    if args.annotators:
                        results["server"]["cycles_s"] = _throughput(
                            app, token, args.annotators, args.seconds, clips
                        )
                    if args.profile:
                        profiler.stop()
                        Path(args.profile).write_text(profiler.output_html())
                        print(profiler.output_text(unicode=False, color=False, show_all=False))
                finally:
                    repo.close()
            if args.only != "server":
                (root / "floor").mkdir()
                floor, ftoken = _floor_app(new_db("floor"), root / "floor", clips)
                ftrips = None
                if args.backend == "postgresql":
                    ftrips = functools.partial(RoundTrips, getattr(floor.store, "conn"))  # noqa: B009
                results["floor"] = _measure(
                    floor, ftoken, args.cycles, args.warmup, db_pids, ftrips
                )
                if args.annotators:
                    results["floor"]["cycles_s"] = _throughput(
                        floor, ftoken, args.annotators, args.seconds, clips
                    )
        finally:
            if cluster is not None:
                cluster.stop()
    load = os.getloadavg()
    print(f"{args.backend}, {args.cycles} cycles; load average {load[0]:.2f} {load[1]:.2f}")
    keys = ["cpu_us", "db_cpu_us", "wall_us", "calls", "trips_claim", "trips_audio", "trips_submit"]
    if args.annotators:
        keys.append("cycles_s")
    print(f"{'':8}" + "".join(f"{k:>13}" for k in keys))
    for side, r in results.items():
        print(f"{side:8}" + "".join(f"{r[k]:>13.1f}" for k in keys))
    if len(results) == 2:
        s, f = results["server"], results["floor"]
        for k in ("cpu_us", "wall_us", "calls", *(["cycles_s"] if args.annotators else [])):
            print(f"server/floor {k}: {s[k] / f[k]:.2f}x")
        total_s, total_f = s["cpu_us"] + s["db_cpu_us"], f["cpu_us"] + f["db_cpu_us"]
        print(f"server/floor cpu incl. database: {total_s / total_f:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
