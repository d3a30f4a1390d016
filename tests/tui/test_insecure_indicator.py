"""--insecure is shown for the whole session, not as a passing toast (issue: transport security)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from tests.fixtures.server import LiveServer
from tests.tui.helpers import annotate_screen, services_for, wait_for_clip
from widgets import StatsBar


@pytest.mark.parametrize("insecure", [True, False])
async def test_insecure_stays_on_screen(
    insecure: bool,
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    live_server.ingest(test_wavs(4))
    services = services_for(live_server, insecure=insecure)
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_clip(pilot, app)
            await pilot.pause(0.3)
            line = str(annotate_screen(app).query_one(StatsBar).render())
            assert ("INSECURE" in line) is insecure
    finally:
        services.shutdown()
