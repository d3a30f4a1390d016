"""The review screen against a real (in-process) server: the word-level diff, and an edited
final saved with the reviewer as its author."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.widgets import Input

from annotator.audio.null_player import NullPlayer
from annotator.review.app import ReviewApp, transcript_text
from annotator.review.diff import word_diff
from api.client import QueueClient
from api.models import Role
from api.quality_models import Final
from api.review_client import ReviewClient
from api.server.quality_store import QualityStore
from tests.fixtures.server import ClockedServer
from tests.server.helpers import body, key


def test_word_diff() -> None:
    assert word_diff("play some jazz now", "play the jazz") == [
        ("same", "play"),
        ("removed", "some"),
        ("added", "the"),
        ("same", "jazz"),
        ("removed", "now"),
    ]
    assert word_diff("", "hi") == [("added", "hi")]
    shown = transcript_text("a b", "a c")
    assert shown.plain == "a b c"
    assert [s.style for s in shown.spans] == ["strike red", "underline green"]


async def test_an_edited_final_is_saved_with_the_reviewer(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    server = make_clocked_server(annotations_per_clip=2, gold_rate=0.0)
    (clip,) = server.ingest(test_wavs(1))
    for who, intent in (("a", "alarm_set"), ("b", "alarm_query")):
        with server.client(server.token(who)) as c:
            (lease,) = c.post("/v1/leases", json={"count": 1}).json()["leases"]
            r = c.post(
                "/v1/annotations",
                json=body(lease, intent=intent),
                headers={"Idempotency-Key": key()},
            )
            assert r.status_code == 201
    queue = QueueClient(server.url, server.token("rev", Role.REVIEWER))
    app = ReviewApp(ReviewClient(queue), NullPlayer())
    try:
        async with app.run_test(size=(140, 30)) as pilot:
            for _ in range(50):
                await pilot.pause(0.05)
                if app.items:
                    break
            assert [i.clip_id for i in app.items] == [clip]
            await pilot.press("right", "e")  # edit from the second annotation
            transcript = app.query_one("#transcript")
            assert app.focused is transcript
            await pilot.press("end", *" please", "enter")
            await pilot.press("enter", "enter", "enter")  # intent, flags and note as they were
            for _ in range(50):
                await pilot.pause(0.05)
                if not app.items:
                    break
            assert not app.items
    finally:
        queue.close()
    (final,) = QualityStore(server.repo).finals()
    assert (final.transcript, final.intent) == ("wake me up at seven please", "alarm_query")
    assert final.decided_by == "rev" and len(final.from_annotations) == 2


async def _decide_escalated_clip(
    server: ClockedServer,
    test_wavs: Callable[..., list[Path]],
    decide: Callable[[ReviewApp, Any], Awaitable[None]],
) -> tuple[str, Final]:
    """One clip, two annotations (one plain, one flagged distress with the note it needs),
    decided in the review screen by `decide(app, pilot)`; the clip and its stored final."""
    (clip,) = server.ingest(test_wavs(1))
    for who, extra in (
        ("a", {}),
        ("b", {"flags": ["distress"], "note": "someone screams for help"}),
    ):
        with server.client(server.token(who)) as c:
            (lease,) = c.post("/v1/leases", json={"count": 1}).json()["leases"]
            r = c.post(
                "/v1/annotations", json=body(lease, **extra), headers={"Idempotency-Key": key()}
            )
            assert r.status_code == 201, r.text
    queue = QueueClient(server.url, server.token("rev", Role.REVIEWER))
    app = ReviewApp(ReviewClient(queue), NullPlayer())
    try:
        async with app.run_test(size=(140, 30)) as pilot:
            await _wait(pilot, lambda: bool(app.items))
            await decide(app, pilot)
            await _wait(pilot, lambda: not app.items)
            assert not app.items, app.query_one("#status").render()
    finally:
        queue.close()
    (final,) = QualityStore(server.repo).finals()
    return clip, final


async def _wait(pilot: Any, done: Callable[[], bool]) -> None:
    for _ in range(100):
        await pilot.pause(0.05)
        if done():
            return


def _flagged(app: ReviewApp) -> int:
    return next(i for i, a in enumerate(app.items[0].annotations) if a.flags)


async def test_taking_an_escalated_annotation_keeps_its_note(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    """A reviewer who took the annotation flagged distress was told "not saved: 422
    note_required": the final was sent without the note the annotation carried."""

    async def take(app: ReviewApp, pilot: Any) -> None:
        await pilot.press(str(_flagged(app) + 1))

    server = make_clocked_server(annotations_per_clip=2, gold_rate=0.0)
    _, final = await _decide_escalated_clip(server, test_wavs, take)
    assert final.flags == ["distress"]


async def test_an_edited_escalated_final_keeps_and_can_change_its_note(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> None:
    """The editor had no note field: an edited final with an escalation flag could not be saved."""

    async def edit(app: ReviewApp, pilot: Any) -> None:
        app.selected = _flagged(app)
        await pilot.press("e")
        note = app.query_one("#note", Input)
        assert note.value == "someone screams for help"
        await pilot.press("enter", "enter", "enter")  # transcript, intent, flags as they were
        assert app.focused is note
        await pilot.press("end", *" (checked)", "enter")

    server = make_clocked_server(annotations_per_clip=2, gold_rate=0.0)
    clip, final = await _decide_escalated_clip(server, test_wavs, edit)
    assert final.flags == ["distress"]
    with server.repo._read() as conn:
        (stored,) = server.repo._one(
            conn, "SELECT note FROM adjudications WHERE clip_id = ?", (clip,)
        )
    assert stored == "someone screams for help (checked)"
