"""Snapshots of a machine draft on screen (issue 13's TUI side) at 80×24 and 200×60: the
"machine draft" line, the unsure words underlined, the suggestions on 1–3."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annotator.prefetch import ReadyClip
from api.models import AsrWord
from tests.fixtures.snapshots import freeze_moving_parts
from tests.tui.fakes import make_app, ready_clip

WORDS = [("remind", 0.97), ("me", 0.31), ("to", 0.9), ("call", 0.88), ("mum", 0.42)]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    for name in ("ANNOTATOR_SERVER", "ANNOTATOR_TOKEN", "ANNOTATOR_AUDIO", "ANNOTATOR_KEYMAP"):
        monkeypatch.delenv(name, raising=False)


def drafted_clip(index: int) -> ReadyClip:
    clip = ready_clip(index, hint=" ".join(w for w, _ in WORDS))
    lease_clip = clip.lease.clip.model_copy(
        update={
            "asr_words": [AsrWord(word=w, confidence=c) for w, c in WORDS],
            "suggested_intents": ["calendar_set", "calendar_query", "alarm_set"],
        }
    )
    return dataclasses.replace(clip, lease=clip.lease.model_copy(update={"clip": lease_clip}))


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_machine_draft(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(tmp_path, [drafted_clip(1), ready_clip(2)])

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await pilot.pause(0.1)
        await freeze_moving_parts(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
