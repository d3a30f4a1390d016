"""Conflicts in the TUI: a real 409 from the server (FakeClock: my lease expires, someone else
completes the clip), then the count in the stats bar, the list by key, and the JSONL export."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable

from annotator.paths import data_dir
from annotator.screens.conflicts import ConflictsScreen
from annotator.store.db import LocalStore
from annotator.sync import SyncEngine
from tests.fixtures.server import ClockedServer
from tests.store.sync_support import annotation_for, client_factory, lease_many, submit_all
from tests.tui.fakes import make_app, ready_clip
from tests.tui.helpers import annotate_screen, wait_until

SIZE = (110, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    for name in ("ANNOTATOR_SERVER", "ANNOTATOR_TOKEN", "ANNOTATOR_AUDIO", "ANNOTATOR_KEYMAP"):
        monkeypatch.delenv(name, raising=False)


def produce_conflict(srv: ClockedServer, wavs: list[Path], db: Path) -> tuple[str, str]:
    """What a real 409 leaves in the store: (my clip id, my transcript)."""
    srv.ingest(wavs)
    me, other = srv.token("ann1"), srv.token("ann2")
    mine = lease_many(srv.url, me, 2, ttl=30)
    srv.clock.advance(31)  # my leases expire...
    (theirs,) = lease_many(srv.url, other, 1, ttl=60)  # ...someone else takes the first clip
    assert theirs.clip.clip_id == mine[0].clip.clip_id
    with client_factory(srv.url, other)() as c:
        c.submit(annotation_for(theirs), "their-key-0001")
    with LocalStore.open(db) as store:
        submit_all(store, mine)
        summary = SyncEngine(store, client_factory(srv.url, me)).flush(10)
        assert (summary.conflicts, summary.late) == (1, 1)
    return mine[0].clip.clip_id, annotation_for(mine[0]).transcript


async def test_a_real_conflict_is_counted_listed_and_exported(
    clocked_server: ClockedServer, test_wavs: Callable[..., list[Path]], tmp_path: Path
) -> None:
    clip_id, transcript = produce_conflict(clocked_server, test_wavs(2), tmp_path / "local.db")
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])  # opens the same local.db
    async with app.run_test(size=SIZE) as pilot:
        screen = annotate_screen(app)
        await wait_until(pilot, lambda: screen.current is not None)
        assert screen.stats.conflicts == 1
        assert "1 conflict" in str(screen.stats.render())

        await pilot.press("alt+y")  # app.conflicts in the default keymap
        await wait_until(pilot, lambda: isinstance(app.screen, ConflictsScreen))
        conflicts = app.screen
        assert isinstance(conflicts, ConflictsScreen)
        table: DataTable[str] = conflicts.query_one(DataTable)
        assert table.row_count == 1
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[0] == clip_id[:8]
        assert row[2] == "completed_by_other"
        assert row[3].startswith(" ".join(transcript.split()[:3]))

        await pilot.press("e")
        await wait_until(pilot, lambda: conflicts.exported_to is not None)
        out = conflicts.exported_to
        assert out is not None and out.parent == data_dir()
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        (record,) = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
        assert record["clip_id"] == clip_id and record["reason"] == "completed_by_other"
        assert record["annotation"]["transcript"] == transcript
        assert any(str(out) in n.message for n in app._notifications)

        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        # The list is never emptied by looking at it or exporting it.
        assert screen.services.store.conflict_count() == 1


async def test_no_conflicts_shows_nothing_and_an_empty_list(tmp_path: Path) -> None:
    app = make_app(tmp_path, [ready_clip(1)])
    async with app.run_test(size=SIZE) as pilot:
        screen = annotate_screen(app)
        await wait_until(pilot, lambda: screen.current is not None)
        assert screen.stats.conflicts == 0
        assert "conflict" not in str(screen.stats.render())
        await pilot.press("alt+y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConflictsScreen))
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ConflictsScreen) and app.screen.exported_to is None
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
