"""The status bar tells the truth about the server within 2 s of a real change."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from annotator.workbench.connectivity import Link
from tests.fixtures.server import LiveServer
from tests.tui.helpers import services_for, wait_for_clip, wait_until

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


async def test_status_bar_follows_the_server_process(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    live_server.ingest(test_wavs(6))
    services = services_for(live_server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            await wait_until(pilot, lambda: services.prefetcher.status.ready >= 3)
            assert screen.stats.online
            drawn: list[tuple[float, str]] = []  # every state the bar showed, and when

            def seen(_link: str) -> None:
                line = str(screen.stats.render())
                words = [w for w in ("● online", "◌ reconnecting", "○ offline") if w in line]
                drawn.append((time.monotonic(), " ".join(words)))

            screen.watch(screen.stats, "link", seen, init=False)
            # Nobody submits: only the connectivity owner can notice the server is gone.
            live_server._kill()
            gone = time.monotonic()
            await wait_until(pilot, lambda: screen.stats.link == "offline", timeout=5)
            assert time.monotonic() - gone <= 2.0
            # The bar said so on the way: reconnecting (one failure, checked again), then offline.
            assert [text for _, text in drawn] == ["◌ reconnecting", "○ offline"]
            banner = str(screen.query_one("#banner").render())
            assert banner.startswith("offline")
            assert services.workbench.connectivity.state.link is Link.OFFLINE
            live_server.start()
            back = time.monotonic()
            await wait_until(pilot, lambda: screen.stats.online, timeout=5)
            assert time.monotonic() - back <= 2.0
            assert drawn[-1][1] == "● online"
    finally:
        services.shutdown()
