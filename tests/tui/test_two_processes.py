"""Two processes on one profile at once, with the real commands (real server, the TUI in tmux).

- A second `annotator` on a profile that is open says so (which pid, since when, what to do)
  and exits 2; `annotator purge` refuses too. After the first is killed with SIGKILL its lock
  is gone: the second starts and adopts its clips.
- `annotator checkout` twice and `annotator sync` beside a TUI that is killed with SIGKILL and
  started again meanwhile: the TUI adopts the checked-out clips within seconds and works them
  offline; nothing is leased twice or left stranded on the server.
- `annotator sync` racing the TUI's own sync engine, the TUI killed with SIGKILL meanwhile:
  every annotation reaches the server exactly once.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from annotator.profile_lock import holder
from annotator.store.db import LocalStore
from annotator.store.models import LeaseOrigin, LeaseRecord
from tests.fixtures.server import LiveServer
from tests.server.helpers import live_lease_ids
from tests.store.sync_support import export
from tests.tui.test_tui_crash import (
    ANNOTATOR,
    Pane,
    home,  # noqa: F401 - a fixture
    shown_clip,
    wait_for,
    wait_for_clip,
)

pytestmark = [pytest.mark.slow, pytest.mark.tmux]

TUI = f"exec {ANNOTATOR} --audio none"


@pytest.fixture
def panes(live_server: LiveServer, home: Path) -> Iterator[Callable[[str], Pane]]:  # noqa: F811
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": live_server.url,
        "ANNOTATOR_TOKEN": live_server.annotator_token,
    }
    made: list[Pane] = []

    def make(command: str = TUI) -> Pane:
        pane = Pane(f"annotator-two-{uuid.uuid4().hex[:8]}", env, command)
        pane.start()
        made.append(pane)
        return pane

    yield make
    for pane in made:
        pane.tmux("kill-server")


def joined(pane: Pane) -> str:
    """The screen with wrapped lines joined (messages longer than the terminal is wide)."""
    return pane.tmux("capture-pane", "-p", "-J", "-t", pane.session)


def run(pane: Pane, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ANNOTATOR), *argv],
        env=pane.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def records() -> list[LeaseRecord]:
    with LocalStore.open() as store:
        return store.lease_records()


def outbox() -> int:
    with LocalStore.open() as store:
        return store.outbox_count()


def submit_shown(pane: Pane, text: str) -> str:
    """Annotate the clip on screen and wait for the next one; the clip (header) submitted."""
    clip = wait_for_clip(pane)
    pane.text(text)
    wait_for(lambda: text in pane.screen(), "the typed transcript", 5, pane)
    pane.keys("C-l")
    pane.text("alarmset")
    pane.keys("Enter")
    pane.keys("C-s")
    wait_for(lambda: shown_clip(pane) not in (None, clip), "the next clip", 15, pane)
    return clip


def test_a_second_annotator_on_an_open_profile_says_who_has_it(
    panes: Callable[..., Pane], live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    live_server.ingest(test_wavs(10))
    first = panes()
    wait_for_clip(first)
    pid = first.pane_pid()
    second = panes(f"{ANNOTATOR} --audio none; echo exit=$?; sleep 600")
    wait_for(lambda: "exit=" in second.screen(), "the second annotator to exit", 20, second)
    text = joined(second)
    assert "exit=2" in text, text
    assert f"is open in another annotator (pid {pid}, since " in text, text
    assert "ANNOTATOR_HOME=" in text and "Traceback" not in text
    # Nothing of the first one's was touched: its leases are still its own.
    (session,) = {r.session for r in records()}
    assert f":{pid}:" in (session or "")

    code, said = finished(run(first, "purge", "--yes"))
    assert code == 1 and f"pid {pid}" in said and "refusing to purge" in said, said

    # kill -9 leaves no lock behind: the next annotator starts and takes over its clips.
    held = {r.lease_id for r in records()}
    first.kill_annotator()
    second.tmux("respawn-pane", "-k", "-t", second.session, TUI, check=True)
    wait_for_clip(second)
    new_pid = second.pane_pid()
    found = holder()
    assert found is not None and found.pid == new_pid
    wait_for(
        lambda: all(f":{new_pid}:" in (r.session or "") for r in records() if r.lease_id in held),
        "the killed annotator's leases adopted",
        10,
        second,
    )


def test_checkouts_and_sync_beside_a_running_annotator(
    panes: Callable[..., Pane], live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    live_server.ingest(test_wavs(16))
    tui = panes()
    wait_for_clip(tui)
    wait_for(lambda: len(records()) >= 4, "the shown and 3 prefetched clips recorded", 15, tui)
    # Two checkouts and a sync at once, in other terminals; the TUI killed meanwhile and started
    # again while they run.
    jobs = [run(tui, "checkout", "--count", "3"), run(tui, "checkout", "--count", "3")]
    jobs.append(run(tui, "sync"))
    time.sleep(0.2)
    tui.kill_annotator()
    tui.restart()
    wait_for_clip(tui)
    pid = tui.pane_pid()
    results = [finished(job) for job in jobs]
    assert [code for code, _ in results] == [0, 0, 0], results
    checked_out = {
        r.lease_id: r.lease.clip.clip_id for r in records() if r.origin is LeaseOrigin.CHECKOUT
    }
    assert len(checked_out) == 6
    # The running annotator adopts them without a restart...
    wait_for(
        lambda: all(
            f":{pid}:" in (r.session or "") for r in records() if r.lease_id in checked_out
        ),
        "the checked-out leases adopted by the running annotator",
        10,
        tui,
    )
    # ...and the server holds exactly what this profile recorded: none twice, none stranded.
    wait_for(
        lambda: live_lease_ids(live_server) == {r.lease_id for r in records()},
        "the server's live leases to be the profile's",
        10,
    )

    # Offline now: the prefetched clips, then the checked-out ones, all from this disk.
    live_server.stop()
    shown: list[str] = []
    for i in range(5):
        shown.append(submit_shown(tui, f"offline clip {i}"))
    # The 1 on screen and 3 ready came first; then the adopted checkouts, from the cache.
    now_shown = shown_clip(tui) or "?"
    assert any(c.startswith((shown[4], now_shown)) for c in checked_out.values()), shown

    live_server.start()
    tui.keys("C-q")
    wait_for(tui.dead, "the annotator to quit", 15, tui)
    code, said = finished(run(tui, "sync"))
    assert code == 0, said
    counts = Counter(r["transcript"] for r in export(live_server.url, live_server.admin_token))
    assert counts == Counter(f"offline clip {i}" for i in range(5)), counts


def test_sync_racing_the_annotator_and_a_kill_loses_and_doubles_nothing(
    panes: Callable[..., Pane], live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> None:
    live_server.ingest(test_wavs(12))
    tui = panes()
    wait_for_clip(tui)
    wait_for(lambda: len(records()) >= 4, "the shown and 3 prefetched clips recorded", 15, tui)
    live_server.stop()
    texts = [f"raced {i}" for i in range(3)]
    for text in texts:
        submit_shown(tui, text)
    assert outbox() == 3
    live_server.start()
    # The TUI's engine wakes on the server's return; `annotator sync` sends the same rows now.
    sync = run(tui, "sync")
    time.sleep(0.3)
    tui.kill_annotator()
    code, said = finished(sync)
    assert code == 0, said
    assert re.search(r"sent \d+", said) or "nothing to send" in said, said
    tui.restart()
    wait_for_clip(tui)
    wait_for(lambda: outbox() == 0, "the outbox empty", 15, tui)
    counts = Counter(r["transcript"] for r in export(live_server.url, live_server.admin_token))
    assert counts == Counter(texts), counts
