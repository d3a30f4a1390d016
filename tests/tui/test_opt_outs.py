"""Opt-outs through the real command, the real TUI and the real server (K = 2): a person who
opted out of `minor` with `annotator welfare --opt-out minor` is never served the clip an
earlier annotator flagged `minor`, and is served the others."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from api.client import QueueClient, new_idempotency_key
from api.models import AnnotationIn
from tests.fixtures.server import REPO_ROOT, LiveServer, annotator_command, open_repo
from tests.tui.helpers import services_for, wait_for_clip, wait_until


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


def leased_clips(server: LiveServer, person: str) -> set[str]:
    repo = open_repo(server.db, server.data_dir)
    try:
        with repo._read() as conn:
            rows = repo._x(
                conn, "SELECT clip_id FROM leases WHERE annotator = ?", (person,)
            ).fetchall()
        return {str(r[0]) for r in rows}
    finally:
        repo.close()


async def test_opted_out_person_never_gets_the_flagged_clip(
    make_live_server: Callable[..., LiveServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_live_server("--annotations-per-clip", "2")
    server.ingest(test_wavs(3))
    first = QueueClient(server.url, server.annotator_token)
    leases = first.lease(3).leases
    for i, lease in enumerate(leases):
        first.submit(
            AnnotationIn(
                lease_id=lease.lease_id,
                fence=lease.fence,
                transcript="play something",
                intent="weather_query",
                flags=["minor"] if i == 1 else [],
            ),
            new_idempotency_key(),
        )
    flagged = leases[1].clip.clip_id
    bob = server.new_token("bob")
    env = {**os.environ, "ANNOTATOR_SERVER": server.url, "ANNOTATOR_TOKEN": bob}
    done = subprocess.run(
        [*annotator_command(), "welfare", "--opt-out", "minor"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "opted out of: minor" in done.stdout

    server.annotator_token = bob
    services = services_for(server)
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await wait_for_clip(pilot, app)
            await wait_until(pilot, lambda: len(leased_clips(server, "bob")) == 2)
            await pilot.pause(0.5)  # the prefetcher asked for more: nothing else is served
            got = leased_clips(server, "bob")
            assert flagged not in got
            assert got == {lease.clip.clip_id for lease in leases} - {flagged}
            assert screen.current is not None and screen.current.lease.clip.clip_id != flagged
    finally:
        services.shutdown()
