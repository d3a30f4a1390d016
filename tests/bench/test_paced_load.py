"""The paced (open-loop) load: cycles are due on a schedule whatever the server does, and a cycle
that starts late because the server was slow counts its latency from when it was due. A fake
cycle stands in for the server: the schedule is what is under test, not the server."""

from __future__ import annotations

import asyncio
import time

import aiohttp  # noqa: F401 - imported before any clock starts, as the generator does

from bench.server_bench import _GenResult, paced_loop


async def _run(
    durations: list[float], interval: float, seconds: float
) -> tuple[_GenResult, list[float]]:
    out = _GenResult()
    starts: list[float] = []

    async def cycle(k: int) -> str:
        starts.append(time.monotonic())
        await asyncio.sleep(durations[min(k - 1, len(durations) - 1)])
        return ""

    now = time.monotonic()
    await paced_loop(cycle, now, interval, now, now + seconds, out)
    return out, [s - now for s in starts]


async def test_a_fast_server_sees_the_offered_rate_and_its_own_latency() -> None:
    out, starts = await _run([0.005], interval=0.05, seconds=0.5)
    assert out.cycles == 10 and out.errors == 0
    # Each cycle starts when due, not when the last one ended.
    for k, at in enumerate(starts):
        assert abs(at - k * 0.05) < 0.03, starts
    assert max(out.latencies_ms) < 40


async def test_a_stall_shows_as_the_queue_behind_it() -> None:
    # The first cycle takes 0.3 s: the cycles due meanwhile start late, one at a time, and
    # each one's latency includes its wait. A closed loop would have measured ~5 ms for them.
    out, starts = await _run([0.3, 0.005], interval=0.05, seconds=0.5)
    assert out.cycles == 10
    lat = out.latencies_ms
    assert lat[0] >= 290
    assert lat[1] >= 240, lat  # due at 0.05, started at ~0.3
    assert lat[-1] < 40, lat  # caught up by the end
    assert starts[1] >= 0.29


async def test_failures_are_counted_not_timed() -> None:
    out = _GenResult()

    async def cycle(k: int) -> str:
        return "lease 503" if k % 2 else ""

    now = time.monotonic()
    await paced_loop(cycle, now, 0.01, now, now + 0.1, out)
    assert out.errors == 5 and out.cycles == 5
    assert out.first_error == "lease 503"
