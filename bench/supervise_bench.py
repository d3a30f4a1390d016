"""Escalation reaches the server → visible in the supervisor's console (issue 11: p99 ≤ 2 s).

A real `annotator serve`; the real console (`SuperviseApp`, headless, with its long-poll feed
thread) signed in as a supervisor; an annotator submits flagged annotations one at a time. The
value: for each, the console's draw of its row (the screen's `arrivals`, wall clock) minus its
`created_at` (the server's clock on the same host: when it reached the server). The floor, in the
same run and for the same escalations: a bare httpx long-poll on the same route (no Textual, no
pydantic) noting when each id first appears, i.e. what the server's long-poll alone costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from bench.harness import client_args, pct
from bench.results import Figure
from bench.server_bench import _settled, open_server_repo, prepare, running_server

TARGET_S = 2.0
#: Between escalations, so each arrives on a page of its own (as they do in a shift).
GAP_S = 0.25


def _tokens(root: Path) -> tuple[str, str]:
    from api.models import Role

    (annotator,) = prepare(root, 200, 1)
    repo = open_server_repo(str(root / "queue.db"), root / "data")
    try:
        return annotator, _settled(repo.create_token("bench-supervisor", Role.SUPERVISOR))
    finally:
        _settled(repo.close())


class _BareWatcher(threading.Thread):
    """The floor: the route's long-poll with nothing on top, noting when each id first shows."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=40
        )

    def run(self) -> None:
        cursor: str | None = None
        while not self.stop.is_set():
            params: dict[str, str | float | list[str]] = {"state": ["open", "acknowledged"]}
            if cursor is not None:
                params.update(cursor=cursor, wait=5)
            body = json.loads(self._http.get("/v1/escalations", params=params).content)
            now = time.time()
            for row in body["escalations"]:
                self.seen.setdefault(row["escalation_id"], now)
            cursor = body["cursor"]


def _submit_flagged(url: str, token: str) -> None:
    from api.client import QueueClient
    from api.models import AnnotationIn

    with QueueClient(url, token) as client:
        lease = client.lease().leases[0]
        client.submit(
            AnnotationIn(
                lease_id=lease.lease_id,
                fence=lease.fence,
                transcript="please help",
                intent="not_device_directed",
                flags=["distress"],
                note="screaming in the background",
            ),
            uuid.uuid4().hex,
        )


async def _measure(url: str, annotator: str, supervisor: str, n: int) -> tuple[list[float], ...]:
    from annotator.supervise.app import SuperviseApp
    from annotator.supervise.services import build_console

    os.environ["ANNOTATOR_SERVER"], os.environ["ANNOTATOR_TOKEN"] = url, supervisor
    app = SuperviseApp(build_console(client_args(server=url)))
    watcher = _BareWatcher(url, supervisor)
    watcher.start()
    console: list[float] = []
    floor: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.escalations
        assert screen is not None
        while screen.board.page is None:
            await pilot.pause(0.01)
        for _ in range(n):
            before = len(screen.arrivals)
            await asyncio.to_thread(_submit_flagged, url, annotator)
            deadline = time.monotonic() + 10
            while len(screen.arrivals) == before and time.monotonic() < deadline:
                await pilot.pause(0.005)
            if len(screen.arrivals) == before:
                raise RuntimeError("an escalation did not reach the console within 10 s")
            arrival = screen.arrivals[-1]
            console.append(arrival.shown_at - arrival.created_at)
            while arrival.escalation_id not in watcher.seen and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            floor.append(watcher.seen[arrival.escalation_id] - arrival.created_at)
            await asyncio.sleep(GAP_S)
    watcher.stop.set()
    return console, floor


def figures(quick: bool) -> list[Figure]:
    n = 15 if quick else 60
    with tempfile.TemporaryDirectory(prefix="bench-supervise-") as tmp:
        root = Path(tmp)
        os.environ["ANNOTATOR_HOME"] = str(root / "home")
        annotator, supervisor = _tokens(root)
        # One annotator raises every escalation: the welfare break after 3 would stop the bench.
        with running_server(root, extra=("--break-after-flagged", "0")) as url:
            console, floor = asyncio.run(_measure(url, annotator, supervisor, n))
    return [
        Figure(
            f"escalation reaches the server → visible in the console p99 ({n})",
            pct(console, 99),
            "s",
            TARGET_S,
            "max",
            detail=f"p50 {pct(console, 50) * 1000:.0f} ms; value: created_at → row drawn",
            p99=pct(console, 99),
            floor=pct(floor, 99),
            floor_what="a bare httpx long-poll on the same route sees the same escalation (p99)",
        )
    ]


def main() -> None:
    from bench.results import print_table

    print_table(figures("--quick" in sys.argv))


if __name__ == "__main__":
    main()


__all__ = ["figures"]
