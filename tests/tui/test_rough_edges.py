"""Issue 14's rough edges on the annotate screen (Pilot, the real services and a real server):
toasts keep their text (items 2), the submit-error panel follows the fixes and safe fixes are
made (9), the flags can be reached and worked by keys and the amend header names the right clip
(10)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Static

from annotator.app import AnnotatorApp
from annotator.screens.annotate import AnnotateScreen
from tests.fixtures.server import LiveServer
from tests.tui.helpers import (
    services_for,
    type_text,
    wait_for_clip,
    wait_for_export,
    wait_until,
)
from widgets.flag_panel import NOTE_OPTIONAL_PLACEHOLDER, NOTE_PLACEHOLDER

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


@pytest.fixture
async def running(
    live_server: LiveServer, test_wavs: Callable[..., list[Path]]
) -> AsyncIterator[tuple[Pilot[Any], AnnotateScreen]]:
    live_server.ingest(test_wavs(6))
    services = services_for(live_server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            yield pilot, screen
    finally:
        services.shutdown()


def toasts(screen: AnnotateScreen) -> list[str]:
    """Each notification's words as its toast draws them (Toast.render's own rule)."""
    return [
        (Content.from_markup(n.message) if n.markup else Content(n.message)).plain
        for n in screen.app._notifications
    ]


def error_panel(screen: AnnotateScreen) -> str | None:
    panel = screen.query_one("#form-error", Static)
    return str(panel.render()) if panel.has_class("-shown") else None


async def pick_intent(pilot: Pilot[Any], name: str = "alarmset") -> None:
    await pilot.press("ctrl+l")
    await type_text(pilot, name)
    await pilot.press("enter", "ctrl+t")


async def test_an_unknown_tag_is_named_in_the_toast_and_the_panel_goes_once_fixed(
    running: tuple[Pilot[Any], AnnotateScreen],
) -> None:
    pilot, screen = running
    await pick_intent(pilot)
    await type_text(pilot, "the dog [bark]s")
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: any("unknown tag" in t for t in toasts(screen)))
    (toast,) = [t for t in toasts(screen) if "unknown tag" in t]
    # The tag names were read as markup and vanished: "unknown tag : known tags:".
    assert "unknown tag [bark]: known tags: " in toast and "[noise]" in toast
    assert error_panel(screen) is not None and "[bark]" in (error_panel(screen) or "")

    await pilot.press(*["backspace"] * 7)  # "[bark]s" gone
    await type_text(pilot, "barks")
    await pilot.pause()
    assert screen.transcript.text == "the dog barks"
    assert error_panel(screen) is None  # fixed: the panel does not linger
    assert not screen.transcript.has_class("-invalid")


async def test_the_panel_keeps_what_is_still_wrong(
    running: tuple[Pilot[Any], AnnotateScreen],
) -> None:
    pilot, screen = running
    await type_text(pilot, "a [bark]")  # no intent either
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: error_panel(screen) is not None)
    assert "intent" in (error_panel(screen) or "") and "[bark]" in (error_panel(screen) or "")
    await pilot.press("ctrl+t", *["backspace"] * 6)
    await type_text(pilot, "dog")
    await pilot.pause()
    panel = error_panel(screen) or ""
    assert "intent: pick an intent" in panel and "bark" not in panel


async def test_blanks_at_the_ends_and_double_spaces_are_fixed_and_said(
    running: tuple[Pilot[Any], AnnotateScreen], live_server: LiveServer
) -> None:
    pilot, screen = running
    clip = screen.current
    assert clip is not None
    await pick_intent(pilot)
    await type_text(pilot, " set an  alarm ")
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: any("Fixed before submitting" in t for t in toasts(screen)))
    said = next(t for t in toasts(screen) if "Fixed before submitting" in t)
    assert "blanks at the start, blanks at the end, double spaces" in said
    (row,) = await wait_for_export(live_server, 1)
    assert row["transcript"] == "set an alarm"


async def test_the_flags_by_keys_and_the_note_says_required_only_when_it_is(
    running: tuple[Pilot[Any], AnnotateScreen],
) -> None:
    pilot, screen = running
    panel = screen.flag_panel
    await pilot.press("ctrl+g")
    assert screen.focused is panel.rows  # the flags, not the note
    await pilot.press("down", "space", "up", "space", "down", "down", "space", "space")
    assert panel.flags == {"pii", "minor"}  # explicit toggled twice: off again
    note = panel.query_one("Input")
    assert note.placeholder == NOTE_OPTIONAL_PLACEHOLDER  # type: ignore[attr-defined]
    await pilot.press(*["down"] * 4, "space")  # distress
    assert "distress" in panel.flags
    assert note.placeholder == NOTE_PLACEHOLDER  # type: ignore[attr-defined]
    assert "(required)" in NOTE_PLACEHOLDER and "(required)" not in NOTE_OPTIONAL_PLACEHOLDER
    await pilot.press("space")
    assert note.placeholder == NOTE_OPTIONAL_PLACEHOLDER  # type: ignore[attr-defined]


async def test_the_amend_header_names_the_clip_being_amended(
    running: tuple[Pilot[Any], AnnotateScreen],
) -> None:
    pilot, screen = running
    for text in ("one", "two"):
        await pick_intent(pilot)
        await type_text(pilot, text)
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert screen.header.position == 3
    await pilot.press("alt+z")
    await wait_until(pilot, lambda: bool(screen.bench.amending))
    header = str(screen.header.render())
    assert header.startswith("#2 ") and "amending" in header, header


async def test_no_pace_at_clip_zero(running: tuple[Pilot[Any], AnnotateScreen]) -> None:
    pilot, screen = running
    await pilot.pause(0.2)
    line = str(screen.stats.render())
    assert "today 0/1000 · –/h" in line, line  # not "−111/h behind" before the first clip
    assert "behind" not in line and "ahead" not in line
