"""Issue 10 / SECURITY.md: nothing a server sends reaches the terminal as a control.

A real server whose taxonomy's intent description and flag definition carry ESC sequences and a
bidi override, and whose clip's machine draft does too; the real TUI (Textual pilot) draws them:
every line on screen holds them as visible escapes (`\\x1b`, `\\u202e`), never the characters.
Toasts and banners (which quote servers and exceptions) are escaped the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from tests.fixtures.server import REPO_ROOT, LiveServer, open_repo
from tests.tui.helpers import services_for, wait_for_clip, wait_until

SIZE = (120, 40)
ESC = "\x1b]0;owned\x07\x1b[2J"
RLO = "\u202e"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


def _hostile_taxonomy(path: Path) -> Path:
    taxonomy = json.loads((REPO_ROOT / "api" / "taxonomy_default.json").read_text())
    for intent in taxonomy["intents"]:
        if intent["id"] == "alarm_set":
            intent["description"] = f"sets an alarm {ESC} {RLO}evil"
    for flag in taxonomy["flags"]:
        if flag["id"] == "pii":
            flag["definition"] = f"personal data {ESC}{RLO}"
    path.write_text(json.dumps(taxonomy))
    return path


def _screen_text(app: AnnotatorApp) -> str:
    update = app.screen._compositor.render_update(full=True)
    return "\n".join("".join(seg.text for seg in strip) for strip in update.strips)


async def test_server_text_is_drawn_escaped_in_the_tui(
    make_live_server: Callable[..., LiveServer], test_wavs, tmp_path: Path
) -> None:
    server = make_live_server("--taxonomy", str(_hostile_taxonomy(tmp_path / "taxonomy.json")))
    (clip_id,) = server.ingest(test_wavs(1))
    repo = open_repo(server.db, server.data_dir)
    try:
        words = [("wake", 0.9), (f"{ESC}me", 0.4), (f"{RLO}up", 0.9)]
        assert repo.set_draft(clip_id, " ".join(w for w, _ in words), words)
    finally:
        repo.close()
    services = services_for(server)
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            # The draft is in the transcript field with its controls drawn, not obeyed.
            assert "\x1b" not in screen.transcript.text and RLO not in screen.transcript.text
            assert "\\x1b]0;owned" in screen.transcript.text
            await pilot.press("ctrl+l")  # the intent picker lists the descriptions
            await pilot.pause(0.2)
            app.notify(f"server said {ESC}{RLO}", title=f"bad {ESC}")
            screen.show_banner(f"reconnecting — {ESC}{RLO}")
            await pilot.pause(0.2)
            await wait_until(pilot, lambda: "reconnecting" in _screen_text(app))
            shown = _screen_text(app)
            toasts = [(n.title, n.message) for n in app._notifications]
    finally:
        services.shutdown()
    assert "\x1b" not in shown and "\x07" not in shown and RLO not in shown
    assert "\\x1b]0;owned" in shown  # visible: the annotator can see something is wrong
    assert "\\u202e" in shown
    assert "reconnecting — \\x1b" in shown
    assert (
        "bad \\x1b]0;owned\\x07\\x1b[2J",
        "server said \\x1b]0;owned\\x07\\x1b[2J\\u202e",
    ) in toasts
