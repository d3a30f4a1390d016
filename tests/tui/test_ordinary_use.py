"""What a new user met (issue 16), as they did it: a real `annotator serve`, the real TUI.

Online use with prefetch → ctrl+q → `annotator checkout --count 3` (the real command) → the
server process gone → `annotator` again must open a checked-out clip, say offline, and let the
annotator submit; once the server is back, `annotator sync` delivers every annotation once.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from tests.fixtures.server import LiveServer, annotator_command
from tests.tui.helpers import export, services_for, type_text, wait_for_clip, wait_until

SIZE = (100, 32)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    return home


def annotator(server: LiveServer, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": server.url,
        "ANNOTATOR_TOKEN": server.annotator_token,
    }
    return subprocess.run(
        [*annotator_command(), *argv], env=env, capture_output=True, text=True, timeout=60
    )


def free_clips(server: LiveServer) -> int:
    """How many clips anyone else could lease now (leased as a second annotator, then released)."""
    token = server.new_token("someone-else")
    with server.client(token) as c:
        leases = c.post("/v1/leases", json={"count": 50}).json()["leases"]
        for lease in leases:
            c.post(f"/v1/leases/{lease['lease_id']}/release", json={"reason": "unused"})
    return len(leases)


async def _online_sitting(server: LiveServer, *, draft: bool) -> str:
    services = services_for(server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            await wait_until(pilot, lambda: services.prefetcher.status.ready >= 3)
            if draft:
                await type_text(pilot, "half typed")
            await pilot.press("ctrl+q")
            await wait_until(pilot, lambda: not app.is_running, timeout=5)
            del screen
    finally:
        summary = services.shutdown()
    assert summary is not None
    return summary.text()


@pytest.mark.parametrize("draft", [False, True], ids=["no-draft", "draft"])
async def test_checkout_after_online_use_works_offline(
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    home: Path,
    draft: bool,
) -> None:
    live_server.ingest(test_wavs(10))
    said = await _online_sitting(live_server, draft=draft)
    # Quit gave back the prefetched clips without a draft at once, and said what it kept.
    if draft:
        assert said.startswith("kept 1 clip with a draft until ") and "released 3" in said
        assert free_clips(live_server) == 9
    else:
        assert said == "released 4"
        assert free_clips(live_server) == 10

    done = annotator(live_server, home, "checkout", "--count", "3")
    assert done.returncode == 0, done.stderr
    assert "checked out 3 clips" in done.stdout

    live_server._kill()  # the network is gone, without a goodbye
    started = time.monotonic()
    services = services_for(live_server)
    services.start()
    app = AnnotatorApp(services)
    submitted: list[str] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            await wait_until(pilot, lambda: not screen.stats.online, timeout=10)
            assert time.monotonic() - started <= 10
            for n in range(3):
                await wait_until(pilot, lambda: screen.current is not None, timeout=10)
                assert screen.current is not None
                submitted.append(screen.current.lease.clip.clip_id)
                await pilot.press("alt+shift+c")
                await type_text(pilot, f"offline {n}")
                await pilot.press("ctrl+l")
                await type_text(pilot, "generalgreet")
                await pilot.press("enter", "ctrl+s")
                await wait_until(
                    pilot, lambda n=n: services.store.outbox_count() == n + 1, timeout=5
                )
    finally:
        services.shutdown()

    live_server.start()
    synced = annotator(live_server, home, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    rows = export(live_server)
    assert sorted(r["transcript"] for r in rows) == [f"offline {n}" for n in range(3)]
    assert sorted(r["clip_id"] for r in rows) == sorted(submitted)


async def test_a_tampered_offline_copy_is_named_deleted_and_the_next_clip_shown(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]], home: Path
) -> None:
    from annotator.store import ClipCache, LocalStore, load_cache_key

    live_server.ingest(test_wavs(3))
    done = annotator(live_server, home, "checkout", "--count", "3")
    assert done.returncode == 0, done.stderr
    with LocalStore.open() as store:
        first = store.live_leases()[0]
    key, _ = load_cache_key()
    cache = ClipCache(home / "data" / "cache", key)
    entry = cache.dir / f"{first.clip.clip_id}.clip"
    blob = bytearray(entry.read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit: it no longer authenticates
    entry.write_bytes(bytes(blob))

    live_server.stop()
    services = services_for(live_server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            assert screen.current is not None
            assert screen.current.lease_id != first.lease_id  # the others are not held up
            banner = screen.query_one("#banner")
            await wait_until(pilot, lambda: first.clip.clip_id in str(banner.render()), 5)
            assert "failed authentication and was deleted" in str(banner.render())
            assert first.clip.clip_id not in cache.entries()
    finally:
        services.shutdown()
