"""Escalation figure (issue 11): an escalation reaches the server → a supervisor's long-poll
answers with it. p99 ≤ 2 s.

A real `annotator serve --workers 2` on loopback (so the long-poll and the submission are often
served by different processes, as they would be behind several servers), SQLite and, when a
temporary cluster starts, PostgreSQL. One thread long-polls `GET /v1/escalations?cursor=…&wait=…`
in a loop, as the console does; the annotator submits one distress annotation at a time at
random intervals. The latency of one escalation is from just before its submission is sent
(the upper bound of "reaches the server") to the moment the long-poll's answer listing it is
parsed. The floor is the plain `GET /v1/escalations` round trip (no wait) measured in the same
run against the same server: what one answer costs without waiting for news.

Run: `python -m bench.escalation_bench [--quick]`.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from bench.harness import pct
from bench.results import Figure, print_table
from bench.server_bench import (
    Backend,
    Databases,
    _settled,
    open_server_repo,
    prepare,
    running_server,
)

TARGET_S = 2.0


def _measure(url: str, annotator: str, supervisor: str, n: int) -> tuple[list[float], list[float]]:
    from api.client import QueueClient
    from api.models import AnnotationIn

    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = QueueClient(url, supervisor)

    def watch() -> None:
        cursor = watcher.escalations().cursor
        while not stop.is_set():
            page = watcher.escalations(cursor=cursor, wait=5)
            now = time.monotonic()
            cursor = page.cursor
            for e in page.escalations:
                seen.setdefault(e.note or "", now)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.5)
    sent: dict[str, float] = {}
    rng = random.Random(11)
    with QueueClient(url, annotator) as ann:
        leases = ann.lease(count=n).leases
        for i, lease in enumerate(leases):
            time.sleep(rng.uniform(0.05, 0.4))
            note = f"bench escalation {i}"
            body = AnnotationIn(
                lease_id=lease.lease_id,
                fence=lease.fence,
                transcript="help",
                intent="alarm_set",
                flags=["distress"],
                note=note,
            )
            sent[note] = time.monotonic()
            ann.submit(body, f"bench-escalation-{i:06d}")
    deadline = time.monotonic() + 10
    while len(seen) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    latencies = [seen[k] - t for k, t in sent.items() if k in seen]
    latencies += [float("inf")] * (len(sent) - len(latencies))  # never seen: the worst case
    floor = []
    for _ in range(max(20, n)):
        t0 = time.monotonic()
        watcher.escalations()
        floor.append(time.monotonic() - t0)
    thread.join(timeout=10)
    watcher.close()
    return latencies, floor


def figures(quick: bool) -> list[Figure]:
    from api.models import Role

    n = 30 if quick else 150
    out: list[Figure] = []
    with ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-esc-")))
        dbs = Databases(stack, base)
        backends: tuple[Backend, ...] = ("sqlite", "postgresql")
        for backend in backends:
            name = f"escalation → long-poll p99 ({backend}, 2 workers)"
            root = base / backend
            root.mkdir()
            try:
                db = dbs.new(backend, root)
            except RuntimeError as e:
                out.append(Figure(name, None, "ms", no_floor="not run", not_run=str(e)))
                continue
            [annotator] = prepare(root, n, 1, db)
            repo = open_server_repo(db, root / "data")
            try:
                supervisor = _settled(repo.create_token("bench-supervisor", Role.SUPERVISOR))
            finally:
                _settled(repo.close())
            with running_server(root, workers=2, db=db) as url:
                latencies, floor = _measure(url, annotator, supervisor, n)
            out.append(
                Figure(
                    name,
                    pct(latencies, 99) * 1000,
                    "ms",
                    target=TARGET_S * 1000,
                    direction="max",
                    p99=pct(latencies, 99) * 1000,
                    detail=(
                        f"{n} escalations, p50 {pct(latencies, 50) * 1000:.0f} ms, "
                        f"max {max(latencies) * 1000:.0f} ms; poll interval 250 ms"
                    ),
                    floor=pct(floor, 99) * 1000,
                    floor_what="plain GET /v1/escalations round trip p99, same server and run",
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.escalation_bench")
    parser.add_argument("--quick", action="store_true")
    print_table(figures(parser.parse_args().quick))


if __name__ == "__main__":
    main()
