"""The real `annotator` process in a real terminal (tmux), killed with SIGKILL at random moments.

Each cycle types into the transcript (and, every other cycle, submits), waits a random 0–1.5 s and
`kill -9`s the client, then starts it again in the same pane. After every kill:
- the client reopens on the same clip with the draft that was on disk: everything typed at least
  1 s before the kill is there (drafts are saved within the debounce, ≤ 1 s);
- the local store agrees (read through its public API while the client is dead).
At the end, `annotator sync` (a subprocess) pushes what is left, and the server holds every
annotation whose submit the screen confirmed (the next clip appeared) exactly once, and nothing
twice. The token reaches the client through the environment only, never argv.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from annotator.store.db import LocalStore
from tests.fixtures.server import LiveServer
from tests.store.sync_support import export

pytestmark = [pytest.mark.slow, pytest.mark.tmux]

ANNOTATOR = Path(sys.executable).parent / "annotator"
CYCLES = 10
MAX_WAIT_S = 1.5
#: The draft rule: anything typed this long before the kill is on disk.
DRAFT_RULE_S = 1.0
#: Textual reads ESC+letter (alt+shift+c) as a key only after ESCDELAY (100 ms) of quiet: text
#: following within it keeps extending the "sequence", and past 32 characters it is reissued as
#: "^C" + the text. Wait that long after the clear key before typing.
AFTER_ALT_KEY_S = 0.15
HEADER = re.compile(r"#\d+\s+clip\s+(\S+)")
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
WORDS += ["juliet", "kilo", "lima"]


@dataclass
class Pane:
    """One tmux server (private socket) with one pane running `annotator`, restartable."""

    socket: str
    env: dict[str, str]
    command: str
    session: str = "tui"
    log: list[str] = field(default_factory=list)

    def tmux(self, *args: str, check: bool = False) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=check,
            env=self.env,
        )
        return out.stdout

    def start(self) -> None:
        # The tmux server inherits this environment (token included); panes inherit it from
        # the server, so neither tmux's argv nor the client's carries the token.
        self.tmux(
            "new-session", "-d", "-s", self.session, "-x", "120", "-y", "40", self.command,
            check=True,
        )  # fmt: skip
        self.tmux("set-option", "-g", "remain-on-exit", "on", check=True)

    def restart(self) -> None:
        self.tmux("respawn-pane", "-k", "-t", self.session, self.command, check=True)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys, check=True)

    def text(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text, check=True)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def pane_pid(self) -> int:
        return int(self.tmux("list-panes", "-t", self.session, "-F", "#{pane_pid}").split()[0])

    def dead(self) -> bool:
        return self.tmux("list-panes", "-t", self.session, "-F", "#{pane_dead}").strip() == "1"

    def kill_annotator(self) -> list[int]:
        """SIGKILL the annotator: the pane's process, or its child when a shell sits between."""
        pids = [p for p in _tree(self.pane_pid()) if "annotator" in _cmdline(p)]
        assert pids, f"no annotator process under pane {self.pane_pid()}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(self.dead, "the killed client to be gone", 5)
        return pids


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += _children(p)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(
    predicate: Callable[[], bool], what: str, timeout: float = 15.0, pane: Pane | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.03)
    shown = f"; the screen:\n{pane.screen()}" if pane is not None else ""
    raise AssertionError(f"timed out waiting for {what}{shown}")


def on_screen(pane: Pane, text: str) -> Callable[[], bool]:
    return lambda: text in pane.screen()


def shown_clip(pane: Pane) -> str | None:
    match = HEADER.search(pane.screen())
    return match.group(1) if match else None


def wait_for_clip(pane: Pane) -> str:
    wait_for(lambda: shown_clip(pane) is not None, "a clip on screen", 20, pane)
    clip = shown_clip(pane)
    assert clip is not None
    return clip


def type_words(pane: Pane, rng: random.Random, words: list[str]) -> list[tuple[float, str]]:
    """Type `words` one at a time; (monotonic time the text was handed to tmux, text so far)."""
    sent: list[tuple[float, str]] = []
    text = ""
    for word in words:
        chunk = word if not text else f" {word}"
        pane.text(chunk)
        text += chunk
        sent.append((time.monotonic(), text))
        time.sleep(rng.uniform(0.03, 0.15))
    return sent


def typed_before(sent: list[tuple[float, str]], moment: float) -> str:
    done = [text for at, text in sent if at <= moment]
    return done[-1] if done else ""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "client-home"
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))  # this process reads the same store
    return home


@pytest.fixture
def pane(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]], home: Path
) -> Iterator[Pane]:
    if shutil.which("tmux") is None:
        pytest.skip(reason="tmux is not installed")
    if not ANNOTATOR.exists():
        pytest.skip(reason=f"no console script at {ANNOTATOR}")
    # Each kill strands the prefetched leases until they expire: plenty of clips.
    live_server.ingest(test_wavs(CYCLES * 5 + 10))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": live_server.url,
        "ANNOTATOR_TOKEN": live_server.annotator_token,
    }
    p = Pane(f"annotator-crash-{uuid.uuid4().hex[:8]}", env, f"exec {ANNOTATOR} --audio none")
    assert live_server.annotator_token not in p.command
    p.start()
    yield p
    p.tmux("kill-server")


def draft_on_disk() -> tuple[str | None, str | None]:
    """(clip id of the current lease, its draft's transcript), read while the client is dead."""
    with LocalStore.open() as store:
        current = store.current_lease_id()
        if current is None:
            return None, None
        draft = store.load_draft(current)
        lease = next((le for le in store.live_leases() if le.lease_id == current), None)
        clip_id = lease.clip.clip_id if lease is not None else None
        return clip_id, draft.transcript if draft is not None else None


def test_sigkill_at_random_moments_loses_no_draft_and_no_submission(
    pane: Pane, live_server: LiveServer, home: Path
) -> None:
    seed = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"crash seed {seed} (CRASH_SEED={seed} replays the same waits)")
    started = time.monotonic()
    submitted: list[tuple[str, bool]] = []  # (transcript, confirmed by the screen)
    drafts_checked = 0  # kills with text typed over 1 s before them

    for cycle in range(CYCLES):
        clip = wait_for_clip(pane)
        submitting = cycle % 2 == 1
        pane.keys("M-C")  # clear whatever the last draft held
        time.sleep(AFTER_ALT_KEY_S)
        if not submitting:
            words = rng.sample(WORDS, rng.randint(3, 7))
            sent = type_words(pane, rng, [f"draft{cycle}", *words])
            time.sleep(rng.uniform(0, MAX_WAIT_S))
            killed_at = time.monotonic()
            pane.kill_annotator()
            required = typed_before(sent, killed_at - DRAFT_RULE_S)
            on_disk_clip, on_disk = draft_on_disk()
            if required:
                assert on_disk_clip is not None and on_disk_clip.startswith(clip), (cycle, clip)
                assert on_disk is not None and on_disk.startswith(required), (on_disk, required)
            drafts_checked += bool(required)
            pane.restart()
            assert wait_for_clip(pane) == clip, f"cycle {cycle}: reopened on another clip"
            if required:
                wait_for(on_screen(pane, required), f"draft {required!r}", 5, pane)
            continue

        transcript = f"crash{cycle} " + " ".join(rng.sample(WORDS, 4))
        pane.text(transcript)
        wait_for(on_screen(pane, transcript), "the typed transcript", 5, pane)
        pane.keys("C-l")
        pane.text("alarmset")
        pane.keys("Enter")
        pane.keys("C-s")
        kill_at = time.monotonic() + rng.uniform(0, MAX_WAIT_S)
        confirmed = False
        while time.monotonic() < kill_at:
            now_shown = shown_clip(pane)
            confirmed = confirmed or (now_shown is not None and now_shown != clip)
            time.sleep(0.02)
        pane.kill_annotator()
        submitted.append((transcript, confirmed))
        pane.restart()
        reopened = wait_for_clip(pane)
        if confirmed:
            assert reopened != clip, f"cycle {cycle}: a submitted clip came back"

    # Quit the last client the hard way too, then push what is left from a fresh process.
    pane.kill_annotator()
    sync = subprocess.run(
        [str(ANNOTATOR), "sync"],
        env=pane.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert live_server.annotator_token not in sync.stdout + sync.stderr

    counts = Counter(r["transcript"] for r in export(live_server.url, live_server.admin_token))
    assert all(n == 1 for n in counts.values()), counts  # nothing ever arrives twice
    confirmed_all = [t for t, ok in submitted if ok]
    with LocalStore.open() as store:
        local = [(h.annotation.transcript, h.state.value, h.error) for h in store.history(100)]
    missing = [t for t in confirmed_all if counts[t] != 1]
    assert not missing, f"{missing} not on the server; {submitted=} {local=} {sync.stdout}"
    assert not any(t.startswith("draft") for t in counts)  # drafts never leave the machine
    print(
        f"{CYCLES} kills in {time.monotonic() - started:.1f} s; drafts checked {drafts_checked}; "
        f"submissions confirmed "
        f"{len(confirmed_all)}/{len(submitted)}, on the server {len(counts)}"
    )
