"""The real `annotator demo` in a real terminal (tmux), driven by keys only.

It annotates three clips, reads the screen with `capture-pane`, finds the annotations on the demo
server (whose URL and an admin token `run_demo` writes to ANNOTATOR_DEMO_STATE_FILE), quits, and
checks that quitting stopped the server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.tui.tmux import Tmux, export, start_demo, tmux, wait_for

__all__ = ["tmux"]  # the fixture

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

CLIPS = [
    ("set an alarm for seven thirty", "alarmset", "alarm_set", []),
    ("what is the weather in leeds", "weatherquery", "weather_query", ["pii"]),
    ("play some jazz [music]", "playmusic", "play_music", ["media_playback"]),
]
FLAG_KEYS = {"pii": "M-P", "media_playback": "M-M"}


def test_demo_three_clips_by_keys_only(tmux: Tmux, tmp_path: Path) -> None:
    state = start_demo(tmux, tmp_path)

    for n, (transcript, filter_text, _intent, flags) in enumerate(CLIPS, start=1):
        tmux.keys("M-C")  # clear the ASR hint
        tmux.text(transcript)
        tmux.keys("C-l")
        tmux.text(filter_text)
        tmux.keys("Enter")
        for flag in flags:
            tmux.keys(FLAG_KEYS[flag])
        wait_for(lambda t=transcript: t in tmux.screen(), "the typed transcript", screen=tmux)
        tmux.keys("C-s")
        wait_for(lambda n=n: f"#{n + 1}  clip" in tmux.screen(), f"clip #{n + 1}", screen=tmux)

    wait_for(lambda: "3 this session" in tmux.screen(), "the session count", screen=tmux)
    wait_for(lambda: len(export(state)) == 3, "three annotations on the server", timeout=20)
    rows = export(state)
    got = sorted((r["transcript"], r["intent"], sorted(r["flags"])) for r in rows)
    assert got == sorted((t, i, sorted(f)) for t, _, i, f in CLIPS)

    # Keep the pane after exit, to read what quitting said about the clips it held.
    tmux.run("set-option", "-t", tmux.session, "remain-on-exit", "on")
    tmux.keys("C-q")
    wait_for(
        lambda: tmux.run("list-panes", "-t", tmux.session, "-F", "#{pane_dead}").strip() == "1",
        "the demo to exit",
        timeout=20,
    )
    said = tmux.screen()
    assert "annotator: released 3" in said, said  # the one on screen and the two ready
    tmux.run("kill-session", "-t", tmux.session)
    wait_for(lambda: not tmux.alive(), "the session to close", timeout=5)
    # Quitting stopped the throwaway server.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{state['url']}/v1/health", timeout=1)
