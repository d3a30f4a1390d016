"""How much a repository call costs inline on the event loop vs through a thread hop.

    python scripts/repo_call_cost.py [--cycles 2000]

Starts a throwaway PostgreSQL (tests.fixtures.postgres) and a SQLite file, queues clips, and
times one claim + one durable submit per cycle from an asyncio task: called inline, and via
`asyncio.to_thread`. The numbers back the choice written in `api.server.repository`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.server.backends import open_repository
from api.server.records import NewClip
from api.server.repository import AnnotationContent, Submission
from api.server.sql_repo import dt
from tests.fixtures.postgres import start_temp_cluster


def _clips(n: int) -> list[NewClip]:
    out = []
    for i in range(n):
        audio = i.to_bytes(4, "big") * 64
        out.append(
            NewClip(
                sha256=hashlib.sha256(audio).hexdigest(),
                audio=audio,
                media_type="audio/wav",
                duration_s=1.0,
                sample_rate=16_000,
                channels=1,
                locale="en-US",
                source_name=f"{i}.wav",
            )
        )
    return out


def _cycle(repo: Any, i: int) -> None:
    now = dt(time.time())
    (grant,) = repo.claim("bench", 1, 300, now)
    content = AnnotationContent("hello", "alarm_set", (), None, False)
    s = Submission(grant.lease_id, grant.fence, f"k{i}", "h", "{}", content, 1.0, "v")
    repo.submit("bench", s, now)


async def _run(repo: Any, cycles: int, hop: bool, start: int) -> float:
    call: Callable[[int], Any]
    if hop:

        async def call(i: int) -> None:
            await asyncio.to_thread(_cycle, repo, i)
    else:

        async def call(i: int) -> None:
            _cycle(repo, i)

    t0 = time.perf_counter()
    for i in range(start, start + cycles):
        await call(i)
    return (time.perf_counter() - t0) / cycles * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000, help="claim+submit cycles per mode")
    args = parser.parse_args()
    cluster = start_temp_cluster()
    tmp = Path(tempfile.mkdtemp())
    try:
        for name, url in (
            ("sqlite", f"sqlite:///{tmp / 'q.db'}"),
            ("postgresql", cluster.new_database()),
        ):
            repo = open_repository(url, tmp / "data")
            repo.add_clips(_clips(2 * args.cycles + 200))
            asyncio.run(_run(repo, 100, False, 10**6))  # warm up (prepared statements, caches)
            inline = asyncio.run(_run(repo, args.cycles, False, 0))
            hop = asyncio.run(_run(repo, args.cycles, True, args.cycles))
            print(f"{name:10s} claim+submit: inline {inline:.2f} ms, to_thread {hop:.2f} ms")
            repo.close()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
