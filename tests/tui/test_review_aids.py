"""Issue 13's TUI side and issue 14 items 4, 5 and 7, by real keys against the real server.

Machine drafts are stored on the server's clips before the client leases them (as
`annotator asr backfill` would), so the lease carries `asr_words` and the server's own
suggestions; what was stored is read back from the admin export and the server's database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import OptionList

from annotator.app import AnnotatorApp, Services
from annotator.keymap import load_keymap
from annotator.pedal import hold_key
from annotator.screens.history import HistoryScreen
from annotator.screens.skip import SkipScreen
from tests.fixtures.server import LiveServer, open_repo, wav_bytes
from tests.tui.helpers import services_for, type_text, wait_for_clip, wait_for_export, wait_until

SIZE = (100, 32)
DRAFT = [("remind", 0.95), ("me", 0.31), ("to", 0.9), ("call", 0.88), ("mum", 0.42)]
DRAFT_TEXT = "remind me to call mum"
CLIP_S = 2.5


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


def _queue(server: LiveServer, root: Path, count: int, *, drafted: bool) -> list[str]:
    root.mkdir()
    paths = []
    for i in range(count):
        path = root / f"clip{i:02d}.wav"
        path.write_bytes(wav_bytes(i, seconds=CLIP_S))
        paths.append(path)
    ids = server.ingest(paths)
    if drafted:
        repo = open_repo(server.db, server.data_dir)
        try:
            for clip_id in ids:
                assert repo.set_draft(clip_id, DRAFT_TEXT, DRAFT)
        finally:
            repo.close()
    return ids


@pytest.fixture
async def drafted(live_server: LiveServer, tmp_path: Path) -> AsyncIterator[Services]:
    _queue(live_server, tmp_path / "wavs", 4, drafted=True)
    services = services_for(live_server)
    services.start()
    try:
        yield services
    finally:
        services.shutdown()


@pytest.fixture
async def plain(live_server: LiveServer, tmp_path: Path) -> AsyncIterator[Services]:
    _queue(live_server, tmp_path / "wavs", 6, drafted=False)
    services = services_for(live_server)
    services.start()
    try:
        yield services
    finally:
        services.shutdown()


async def test_a_machine_draft_is_marked_and_never_submitted_unheard(
    live_server: LiveServer, drafted: Services
) -> None:
    app = AnnotatorApp(drafted)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        await pilot.press("f5")  # pause at once: the clip is not heard to the end
        clip = screen.current
        assert clip is not None and clip.lease.clip.asr_words is not None
        editor = screen.transcript.editor
        assert screen.transcript.text == DRAFT_TEXT
        assert editor.unsure_words == ["me", "mum"]  # below LOW_CONFIDENCE (0.5)
        note = screen.transcript.draft_note.text
        assert note is not None and "machine draft" in note
        assert "listen to the end" in note and "shift+f11 clears" in note
        # The server's suggestions sit on 1–3, shown first in the list.
        suggested = clip.lease.clip.suggested_intents
        assert suggested and suggested[0] == "calendar_set"
        assert screen.intent.suggestions == suggested
        assert screen.intent.digit_intent(1) == "calendar_set"
        await pilot.press("ctrl+l", "1")
        assert screen.intent.value == "calendar_set"
        # Unchanged and unheard: refused, and it says why.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.current is clip
        assert any("not yet heard to the end" in str(n.message) for n in app._notifications)
        # Heard through from the start: the same unchanged draft may go.
        await pilot.press("f4")
        review = screen._review
        assert review is not None
        await wait_until(pilot, lambda: review.heard, timeout=CLIP_S * 4)
        assert "heard to the end" in (screen.transcript.draft_note.text or "")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.current is not clip)
        # The next clip: editing counts as having read it; a retyped word loses its mark.
        second = screen.current
        assert second is not None
        await pilot.press("f5")
        await pilot.press("backspace", "backspace", "backspace")
        await type_text(pilot, "mom")
        assert editor.unsure_words == ["me"]
        assert "edited" in (screen.transcript.draft_note.text or "")
        await pilot.press("ctrl+l", "1", "ctrl+s")
        await wait_until(pilot, lambda: screen.current is not second)
        # One key clears a draft (and the clip then needs the annotator's own words).
        await pilot.press("f5", "shift+f11")
        assert screen.transcript.text == ""
        rows = await wait_for_export(live_server, 2)
    by_clip = {r["clip_id"]: r for r in rows}
    assert by_clip[clip.lease.clip.clip_id]["transcript"] == DRAFT_TEXT
    assert by_clip[second.lease.clip.clip_id]["transcript"] == "remind me to call mom"


async def test_finding_intents_fixed_digits_and_the_unintelligible_flag(
    live_server: LiveServer, plain: Services
) -> None:
    app = AnnotatorApp(plain)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        picker = screen.intent
        assert picker.suggestions == [] and picker.frequent == []  # no draft, no history yet
        # "remind" finds calendar_set by its meaning; the filter is empty on the next clip.
        await type_text(pilot, "set a reminder")
        await pilot.press("ctrl+l")
        await type_text(pilot, "remind")
        assert picker.highlighted == "calendar_set"
        await pilot.press("enter", "ctrl+s")
        await wait_until(pilot, lambda: screen.session.done == 1)
        await pilot.press("ctrl+l")
        assert picker.filter_text == "" and picker.value is None
        # "tv", "accident", "other", "none", "noise" lead to the "none of these" intents.
        for query, wanted in [
            ("tv", "not_device_directed"),
            ("accident", "not_device_directed"),
            ("noise", "no_speech"),
        ]:
            await type_text(pilot, query)
            assert picker.highlighted == wanted, query
            await pilot.press("escape")  # Esc empties the filter
            assert picker.filter_text == ""
        # Nothing matches: Enter says so and picks nothing.
        await type_text(pilot, "zqxj")
        await pilot.press("enter")
        await pilot.pause()
        assert picker.value is None
        assert any("No intent matches 'zqxj'" in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        # Unintelligible needs no intent of its own: no_speech is picked, and it says why.
        await pilot.press("ctrl+f10")
        assert picker.value == "no_speech"
        assert "set by the unintelligible flag" in str(
            picker.query_one(".intent-picker--value").render()
        )
        await pilot.press("ctrl+f10")  # flag off again: the automatic pick goes with it
        assert picker.value is None
        await pilot.press("ctrl+f10", "shift+f11", "ctrl+s")
        await wait_until(pilot, lambda: screen.session.done == 2)
        # Digits 4–9 do not move by themselves after submissions…
        assert picker.frequent == []
        await pilot.press("ctrl+l", "4")
        assert picker.value is None
        # …only when asked.
        await pilot.press("ctrl+f")
        assert picker.frequent == ["no_speech", "calendar_set"]  # used once each: newest first
        prompts = [str(o.prompt) for o in picker.query_one(OptionList).options]
        assert prompts[0].startswith("4 no_speech") and prompts[1].startswith("5 calendar_set")
        await pilot.press("5")
        assert picker.value == "calendar_set"
        rows = await wait_for_export(live_server, 2)
    unintelligible = next(r for r in rows if r["intent"] == "no_speech")
    assert unintelligible["flags"] == ["unintelligible"] and unintelligible["transcript"] == ""


async def test_skip_other_asks_why_and_history_reopens_an_older_submission(
    live_server: LiveServer, plain: Services
) -> None:
    app = AnnotatorApp(plain)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        skipped = screen.current
        assert skipped is not None
        await pilot.press("ctrl+o", "5")  # other
        assert isinstance(app.screen, SkipScreen) and app.screen.asking_why
        await pilot.press("enter")  # empty: refused, still asking
        assert isinstance(app.screen, SkipScreen)
        await type_text(pilot, "dog barking 2 rooms away")  # digits are typed, not picked
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.current is not skipped)
        submitted = []
        for words in ("first one", "second one", "third one"):
            clip = screen.current
            assert clip is not None
            submitted.append(clip.lease.clip.clip_id)
            await type_text(pilot, words)
            await pilot.press("ctrl+l")
            await type_text(pilot, "weather")
            await pilot.press("enter", "ctrl+s")
            await wait_until(pilot, lambda clip=clip: screen.current is not clip)
        await pilot.press("shift+f10")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("3")  # the oldest of the three
        await wait_until(pilot, lambda: screen.bench.amending is not None)
        assert screen.transcript.text == "first one"
        await type_text(pilot, " amended")
        await pilot.press("ctrl+s")
        await pilot.pause()

        def amended() -> bool:
            rows = {r["clip_id"]: r for r in _export_now(live_server)}
            return rows.get(submitted[0], {}).get("transcript") == "first one amended"

        await wait_until(pilot, amended, timeout=15)
    with sqlite3.connect(live_server.db_path) as db:
        reason, detail = db.execute(
            "SELECT release_reason, release_detail FROM leases WHERE clip_id = ? AND released = 1",
            (skipped.lease.clip.clip_id,),
        ).fetchone()
    assert (reason, detail) == ("other", "dog barking 2 rooms away")


def _export_now(server: LiveServer) -> list[dict[str, object]]:
    from tests.tui.helpers import export

    return export(server)


async def test_the_pedal_keymap_says_its_play_pedal_toggles(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # Headless, nothing asks a terminal for key releases: the pedal toggles, and says so.
    # (Hold-to-play on a terminal that reports releases: tests/tui/test_pedal_hold.py.)
    _queue(live_server, tmp_path / "wavs", 2, drafted=False)
    services = services_for(live_server, keymap="pedal")
    services.start()
    try:
        app = AnnotatorApp(services)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_clip(pilot, app)
            notes = [str(n.message) for n in app._notifications]
            assert any("play pedal (f10) toggles" in n for n in notes), notes
            player = services.player
            await pilot.press("f4")  # from the start: playing, well before the end
            assert player.playing
            await pilot.press("f10")
            assert not player.playing
            await pilot.press("f10")
            assert player.playing
    finally:
        services.shutdown()
    # The default keymap has no play pedal (so no notice and Textual's own driver).
    assert hold_key(load_keymap("default")) == ""
    assert hold_key(load_keymap("pedal")) == "f10"
