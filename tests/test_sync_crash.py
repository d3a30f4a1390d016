"""SIGKILL a real client (store + sync engine + live server) at random moments, 30 times; after a
restart and a full sync the server holds every submitted annotation exactly once."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.store import LocalStore
from annotator.sync import SyncEngine
from tests.fixtures.server import LiveServer
from tests.store.crash_support import Promises, check_promises, run_and_kill
from tests.store.sync_support import assert_exactly_once, client_factory, export

KILLS = 30


@pytest.mark.slow
def test_sigkill_mid_sync_loses_nothing_and_duplicates_nothing(
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_server.ingest(test_wavs(400))
    home = tmp_path / "home"
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    rng = random.Random()
    promises = Promises()
    for _ in range(KILLS):
        run_and_kill(
            home, promises, server=live_server.url, token=live_server.annotator_token, rng=rng
        )
        with LocalStore.open() as store:
            check_promises(store, promises)
    with LocalStore.open() as store:
        engine = SyncEngine(store, client_factory(live_server.url, live_server.annotator_token))
        summary = engine.flush(30)
        assert summary.pending == 0 and summary.rejected == 0 and summary.conflicts == 0, summary
        history = store.history(100_000)
    records = export(live_server.url, live_server.admin_token)
    # Everything the store holds as submitted is on the server, once; nothing else is.
    assert len(records) == len(history) >= len(promises.submitted) > 0
    assert_exactly_once(records, [h.clip_id for h in history])
    assert {r["annotation_id"] for r in records} == {h.annotation_id for h in history}
    assert promises.kills == KILLS
    # The killed clients' own engines had sent part of it: the kills did land around syncing.
    assert summary.sent < len(history)
