"""Real key presses through the annotate loop, against the real server on loopback.

Each test builds the services exactly as `annotator` does (launch.build_services), with muted
audio, and checks on the server (the admin export) that exactly what was typed was stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp, Services
from annotator.screens.annotate import AnnotateScreen
from annotator.screens.skip import SkipScreen
from annotator.screens.wellbeing import WellbeingScreen
from api.client import Gone, NotFound, QueueClient, RequestRejected
from tests.fixtures.server import LiveServer
from tests.tui.helpers import (
    services_for,
    type_text,
    wait_for_clip,
    wait_for_export,
    wait_until,
)

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))


@pytest.fixture
def server(live_server: LiveServer, test_wavs: Callable[..., list[Path]]) -> LiveServer:
    live_server.ingest(test_wavs(8))
    return live_server


@pytest.fixture
async def services(server: LiveServer) -> AsyncIterator[Services]:
    services = services_for(server)
    services.start()
    try:
        yield services
    finally:
        services.shutdown()


async def annotate(
    pilot: object, screen: AnnotateScreen, transcript: str, intent: str, flags: str = ""
) -> str:
    """Clear, type, pick the intent by typing + Enter, toggle flags, submit. Returns the clip id."""
    assert screen.current is not None
    clip_id = screen.current.lease.clip.clip_id
    await pilot.press("alt+shift+c")  # type: ignore[attr-defined]
    await type_text(pilot, transcript)  # type: ignore[arg-type]
    await pilot.press("ctrl+l")  # type: ignore[attr-defined]
    await type_text(pilot, intent.replace("_", ""))  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    for key in flags.split():
        await pilot.press(key)  # type: ignore[attr-defined]
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    return clip_id


async def test_three_full_loops_store_exactly_what_was_typed(
    server: LiveServer, services: Services
) -> None:
    app = AnnotatorApp(services)
    typed = {}
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        assert screen.transcript.text == ""  # test clips carry no ASR hint
        c1 = await annotate(pilot, screen, "set an alarm for seven", "alarm_set", "alt+shift+p")
        typed[c1] = ("set an alarm for seven", "alarm_set", ["pii"])
        # The next clip is on screen at once (prefetched), and started: its first frame went to
        # the device. (Not `playing`: on a loaded machine a 0.5 s test clip can have ended by the
        # time the pilot returns, as it did once in CI.)
        assert screen.current is not None and screen.current.lease.clip.clip_id != c1
        await wait_until(pilot, lambda: services.player.first_frame_at is not None, timeout=2.0)
        c2 = await annotate(pilot, screen, "what is the weather", "weather_query")
        typed[c2] = ("what is the weather", "weather_query", [])
        c3 = await annotate(
            pilot, screen, "play jazz [music]", "play_music", "alt+shift+m alt+shift+p"
        )
        typed[c3] = ("play jazz [music]", "play_music", ["media_playback", "pii"])
        assert screen.session.done == 3
        rows = await wait_for_export(server, 3)
    stored = {r["clip_id"]: (r["transcript"], r["intent"], sorted(r["flags"])) for r in rows}
    assert stored == {k: (t, i, sorted(f)) for k, (t, i, f) in typed.items()}
    assert all(r["annotator"] == "ann1" for r in rows)


async def test_validation_error_keeps_what_was_typed(
    server: LiveServer, services: Services
) -> None:
    app = AnnotatorApp(services)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        clip = screen.current
        await type_text(pilot, "turn the lights off")
        await pilot.press("ctrl+s")  # no intent yet
        await pilot.pause()
        assert screen.current is clip  # still on the same clip
        assert screen.transcript.text == "turn the lights off"
        assert screen.query_one("#form-error").has_class("-shown")
        assert screen.intent.has_class("-invalid")
        assert app.focused is not None and screen.intent in app.focused.ancestors_with_self
        await type_text(pilot, "lightoff")
        await pilot.press("enter", "ctrl+s")
        await pilot.pause()
        assert screen.current is not clip
        rows = await wait_for_export(server, 1)
    assert rows[0]["transcript"] == "turn the lights off"
    assert rows[0]["intent"] == "iot_hue_lightoff"


async def test_escalation_needs_a_note_and_shows_the_wellbeing_notice(
    server: LiveServer, services: Services
) -> None:
    app = AnnotatorApp(services)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        await type_text(pilot, "help me please")
        await pilot.press("ctrl+l")
        await type_text(pilot, "generalquirky")
        await pilot.press("enter", "alt+shift+d")
        await pilot.pause()
        # The note opens and takes focus as soon as the escalation flag is on.
        assert screen.flag_panel.note_required
        await pilot.press("ctrl+t", "ctrl+s")
        await pilot.pause()
        assert "note" in str(screen.query_one("#form-error").render())
        assert screen.current is not None
        await type_text(pilot, "caller sounds frightened")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, WellbeingScreen)
        assert screen.current is None  # auto-advance paused
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.current is not None)
        assert isinstance(app.screen, AnnotateScreen)
        rows = await wait_for_export(server, 1)
    assert rows[0]["flags"] == ["distress"]
    assert rows[0]["note"] == "caller sounds frightened"
    assert rows[0]["transcript"] == "help me please"


async def test_skip_releases_the_lease(server: LiveServer, services: Services) -> None:
    app = AnnotatorApp(services)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        assert screen.current is not None
        skipped = screen.current.lease_id
        await pilot.press("f8")
        await pilot.pause()
        assert isinstance(app.screen, SkipScreen)
        await pilot.press("3")  # wrong locale
        await wait_until(pilot, lambda: screen.current is not None)
        assert screen.current.lease_id != skipped

        def released() -> bool:
            with QueueClient(server.url, server.annotator_token) as c:
                try:
                    c.audio(skipped)
                except (Gone, NotFound, RequestRejected):
                    return True
                return False

        await wait_until(pilot, released)
    assert services.store.history(5) == []


async def test_undo_reopens_and_amends(server: LiveServer, services: Services) -> None:
    app = AnnotatorApp(services)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        first = await annotate(pilot, screen, "call mum", "email_querycontact")
        assert screen.current is not None
        second = screen.current.lease_id
        await type_text(pilot, "half typed")
        await wait_for_export(server, 1)  # let it reach the server: the amend is a PATCH then
        await pilot.press("alt+z")
        await pilot.pause()
        assert screen.transcript.text == "call mum"
        assert screen.intent.value == "email_querycontact"
        await pilot.press("alt+shift+c")
        await type_text(pilot, "call mom")
        await pilot.press("ctrl+s")
        await pilot.pause()
        # Back on the clip that was put aside, with what was typed there.
        assert screen.current is not None and screen.current.lease_id == second
        assert screen.transcript.text == "half typed"

        async def amended() -> bool:
            rows = await wait_for_export(server, 1)
            return rows[0]["transcript"] == "call mom"

        for _ in range(100):
            if await amended():
                break
            await pilot.pause(0.1)
        rows = await wait_for_export(server, 1)
    assert len(rows) == 1
    assert rows[0]["clip_id"] == first
    assert rows[0]["transcript"] == "call mom"
    assert rows[0]["amended_at"] is not None


async def test_prefetch_keeps_three_ready(server: LiveServer, services: Services) -> None:
    app = AnnotatorApp(services)
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for_clip(pilot, app)
        await wait_until(pilot, lambda: services.prefetcher.status.ready >= 3)
        await annotate(pilot, screen, "hello there", "general_greet")
        await wait_until(pilot, lambda: services.prefetcher.status.ready >= 3)
        await wait_until(pilot, lambda: screen.stats.prefetched >= 3)


async def test_restart_reopens_the_same_clip_with_its_draft(server: LiveServer) -> None:
    services = services_for(server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            assert screen.current is not None
            lease_id = screen.current.lease_id
            await type_text(pilot, "half way through")
            await pilot.press("ctrl+l")
            await type_text(pilot, "qafactoid")
            await pilot.press("enter")
            # No quit key: the draft must already be on disk, as after a kill -9.
            await wait_until(
                pilot,
                lambda: (
                    (d := services.store.load_draft(lease_id)) is not None
                    and d.intent == "qa_factoid"
                ),
                timeout=3,
            )
    finally:
        services.shutdown()

    services = services_for(server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            assert screen.current is not None
            assert screen.current.lease_id == lease_id
            assert screen.transcript.text == "half way through"
            assert screen.intent.value == "qa_factoid"
            assert screen.transcript.editor.cursor_location == (0, len("half way through"))
    finally:
        services.shutdown()


@pytest.mark.slow
async def test_go_offline_then_work_with_the_server_down(server: LiveServer) -> None:
    services = services_for(server)
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_clip(pilot, app)
            await pilot.press("alt+o")
            # The 4 clips not yet prefetched (1 on screen + 3 ready) are leased to us and cached,
            # encrypted; the store records every lease, checked out or prefetched.
            assert services.cache is not None
            await wait_until(pilot, lambda: len(services.cache.entries()) == 4, timeout=15)
            await wait_until(pilot, lambda: len(services.store.live_leases()) == 8)
            origins = [r.origin.value for r in services.store.lease_records()]
            assert sorted(origins) == ["checkout"] * 4 + ["prefetch"] * 4
            server.stop()
            done = []
            for n in range(6):
                await wait_until(pilot, lambda: screen.current is not None, timeout=15)
                done.append(await annotate(pilot, screen, f"offline {n}", "general_greet"))
            await wait_until(pilot, lambda: not screen.stats.online, timeout=15)
            assert services.store.outbox_count() >= 1
            server.start()
            rows = await wait_for_export(server, 6, timeout=60)
    finally:
        services.shutdown()
    assert sorted(r["transcript"] for r in rows) == [f"offline {n}" for n in range(6)]
    assert {r["clip_id"] for r in rows} == set(done)
