"""Offline start: a checked-out lease whose audio is not on this machine never blocks the queue.

Issue 16: "an adopted lease without usable local audio is skipped (released when online), never
blocks the queue". Three clips are checked out; the audio of two is then gone from the cache (as
after a copy that failed its check). With the server down the third, whose audio is here, is
shown at once. When the server answers, the one without a draft goes back to the queue (another
annotator can lease it) and is forgotten locally; the one holding a draft is kept, fetched and
shown — the draft is work (notes/wb16.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.store.models import Draft
from annotator.workbench.outcomes import Shown
from tests.fixtures.server import LiveServer
from tests.workbench.support import next_clip, services_for, submit, wait_for


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNOTATOR_PREFETCH", "0")  # only the checked-out clips are held


def free_clips(server: LiveServer, token: str) -> set[str]:
    """What another annotator is given now (leased and released again at once)."""
    with server.client(token) as c:
        leases = c.post("/v1/leases", json={"count": 10}).json()["leases"]
        for lease in leases:
            c.post(f"/v1/leases/{lease['lease_id']}/release", json={"reason": "unused"})
    return {lease["clip"]["clip_id"] for lease in leases}


def test_a_checked_out_lease_without_audio_is_skipped_offline_and_given_back_online(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    server = live_server
    server.ingest(test_wavs(4))
    first = services_for(server)
    first.start()
    try:
        result = first.workbench.checkout(3)
        assert len(result.leases) == 3 and result.error is None
        no_draft, drafted, here = result.leases
        assert first.cache is not None
        for lease in (no_draft, drafted):
            first.cache.delete(lease.clip.clip_id)
        first.store.save_draft(Draft(drafted.lease_id, drafted.clip.clip_id, "half typed"))
    finally:
        first.shutdown()
    other = server.new_token("other")
    assert len(free_clips(server, other)) == 1  # the three stay checked out

    server._kill()
    offline = services_for(server)
    offline.start()
    try:
        shown = next_clip(offline, timeout=10)
        assert shown.clip.lease_id == here.lease_id  # not held up by the two without audio
        submit(offline, "offline work")
        assert offline.workbench.next() is not None
        assert not isinstance(offline.workbench.next(), Shown)  # nothing else can be shown

        server.start()
        drafted_shown = next_clip(offline, timeout=15)
        assert drafted_shown.clip.lease_id == drafted.lease_id
        assert drafted_shown.draft is not None and drafted_shown.draft.transcript == "half typed"
        wait_for(
            lambda: no_draft.lease_id not in {r.lease_id for r in offline.store.lease_records()},
            timeout=10,
        )
        free = free_clips(server, other)
        assert no_draft.clip.clip_id in free  # back in the queue at once
        assert drafted.clip.clip_id not in free
    finally:
        offline.shutdown()
