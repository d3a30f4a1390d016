"""A malformed outbox row is rejected on its own and the TUI says so, without its text."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from annotator.store import LocalStore
from tests.fixtures.server import LiveServer
from tests.store.sync_support import annotation_for, lease_many
from tests.tui.helpers import export, services_for, wait_for_clip, wait_until

SECRET = "call my bank on oh one two three"


async def test_the_tui_names_a_rejected_row_and_sends_the_rest(
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    live_server.ingest(test_wavs(6))
    leases = lease_many(live_server.url, live_server.annotator_token, 2)
    with LocalStore.open() as store:
        keys = [
            store.submit(annotation_for(le, text), clip_id=le.clip.clip_id).key
            for le, text in zip(leases, [SECRET, "fine"], strict=True)
        ]
        path = store.path
    body = json.loads(annotation_for(leases[0], SECRET).model_dump_json(exclude_none=True))
    body["flags"] = "not a list"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE outbox SET body_json = ? WHERE key = ?", (json.dumps(body), keys[0]))

    services = services_for(live_server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_clip(pilot, app)
            await wait_until(
                pilot, lambda: any("rejected" in n.message for n in app._notifications), 10
            )
            said = " ".join(n.message for n in app._notifications)
            assert "1 submission rejected" in said and "sync --status" in said
            assert SECRET not in said
    finally:
        services.shutdown()
    assert [r["transcript"] for r in export(live_server)] == ["fine"]
