"""A session killed with its terminal: the next one on this host takes its prefetched clips.

The real `annotator` in tmux prefetches, is SIGKILLed (an ssh drop without tmux), and is
started again: the dead session's leases are adopted (shown first, claimed by the new session)
instead of sitting leased to nobody until they expire.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.store.db import LocalStore
from annotator.store.models import LeaseRecord
from tests.fixtures.server import LiveServer
from tests.tui.test_tui_crash import Pane, home, pane, wait_for, wait_for_clip  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.tmux]


def records() -> list[LeaseRecord]:
    with LocalStore.open() as store:
        return store.lease_records()


def test_the_next_session_adopts_a_killed_sessions_prefetched_leases(
    pane: Pane,  # noqa: F811
    live_server: LiveServer,
    home: Path,  # noqa: F811
) -> None:
    wait_for_clip(pane)
    wait_for(lambda: len(records()) >= 4, "the shown and 3 prefetched leases recorded", 15, pane)
    before = records()
    held = {r.lease_id for r in before}
    (dead,) = {r.session for r in before}
    pane.kill_annotator()

    pane.restart()
    shown = wait_for_clip(pane)
    assert any(r.lease.clip.clip_id.startswith(shown) for r in before)  # the header abbreviates
    wait_for(lambda: {r.session for r in records()} != {dead}, "the leases claimed", 10, pane)
    after = records()
    # The same four leases, now the new session's: none left to expire, none leased anew.
    assert {r.lease_id for r in after} == held
    assert dead not in {r.session for r in after}
