"""A supervisor's token opening plain `annotator` is told about `annotator supervise`; an
annotator's is not (real server; the annotate screen from fixed clips)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from annotator.supervise.hint import HINT, supervisor_hint
from api.client import QueueClient
from tests.fixtures.server import LiveServer
from tests.tui.fakes import make_app, ready_clip


def factory(server: LiveServer, token: str) -> partial[QueueClient]:
    return partial(QueueClient, server.url, token)


def test_only_supervisors_and_admins_are_told(live_server: LiveServer) -> None:
    assert supervisor_hint(factory(live_server, live_server.supervisor_token)) == HINT
    assert supervisor_hint(factory(live_server, live_server.admin_token)) == HINT
    assert supervisor_hint(factory(live_server, live_server.annotator_token)) is None
    assert supervisor_hint(partial(QueueClient, "http://127.0.0.1:9", "t")) is None  # offline
    assert supervisor_hint(None) is None


@pytest.mark.parametrize("who", ["supervisor", "annotator"])
async def test_the_annotator_app_says_it(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    app = make_app(tmp_path, [ready_clip(1)])
    token = getattr(live_server, f"{who}_token")
    app.services.client_factory = factory(live_server, token)
    async with app.run_test(size=(100, 32)) as pilot:
        for _ in range(100):  # until the role check has answered
            await pilot.pause(0.05)
            if not [w for w in app.workers if w.group == "role" and not w.is_finished]:
                break
        await pilot.pause()
        told = [n.message for n in app._notifications if n.message == HINT]
        assert told == ([HINT] if who == "supervisor" else [])
