"""Finding 5 (issue 10) through the real TUI: what an annotator types is on disk only sealed.

The real `annotator` in tmux (the pane harness of tests/tui/test_tui_crash.py): a draft is typed
and saved, a transcript typed and submitted; while the client runs (WAL live), and after it is
killed, every file under its ANNOTATOR_HOME is searched for the words, as `strings` would. The
store, opened with the key, gives them back (the search is not blind).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from annotator.store.db import LocalStore
from tests.fixtures.server import LiveServer
from tests.tui import test_tui_crash as crash
from tests.tui.test_tui_crash import (
    AFTER_ALT_KEY_S,
    DRAFT_RULE_S,
    Pane,
    on_screen,
    shown_clip,
    wait_for,
    wait_for_clip,
)

# The crash test's fixtures: a real `annotator` in a private tmux server, and its home.
home = crash.home
pane = crash.pane

pytestmark = [pytest.mark.slow, pytest.mark.tmux]

DRAFT = "zanzibar okafor quenby"
SUBMITTED = "marguerite insulin frontdoor"


def _leaks(root: Path) -> list[tuple[str, str]]:
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        blob = path.read_bytes()
        for word in (*DRAFT.split(), *SUBMITTED.split()):
            if word.encode() in blob or word.encode("utf-16-le") in blob:
                found.append((path.name, word))
    return found


def test_typed_and_submitted_words_are_never_on_disk_in_the_clear(
    pane: Pane, live_server: LiveServer, home: Path
) -> None:
    first = wait_for_clip(pane)
    pane.text(SUBMITTED)
    wait_for(on_screen(pane, SUBMITTED), "the typed transcript", 5, pane)
    pane.keys("C-l")
    pane.text("alarmset")
    pane.keys("Enter")
    pane.keys("C-s")
    wait_for(lambda: shown_clip(pane) not in (None, first), "the next clip", 10, pane)
    pane.keys("M-C")
    time.sleep(AFTER_ALT_KEY_S)
    pane.text(DRAFT)
    wait_for(on_screen(pane, DRAFT), "the typed draft", 5, pane)
    time.sleep(DRAFT_RULE_S + 0.5)  # the draft is saved within the debounce

    assert (home / "data" / "local.db-wal").exists()
    assert _leaks(home) == [], "plaintext on disk while the client runs"
    pane.kill_annotator()
    assert _leaks(home) == [], "plaintext on disk after the client died"

    with LocalStore.open() as store:
        current = store.current_lease_id()
        assert current is not None
        draft = store.load_draft(current)
        assert draft is not None and draft.transcript == DRAFT
        assert SUBMITTED in {h.annotation.transcript for h in store.history()}
    assert _leaks(home) == []
