"""The review screen against a real (in-process) server: the word-level diff, and an edited
final saved with the reviewer as its author."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from annotator.audio.null_player import NullPlayer
from annotator.review.app import ReviewApp, transcript_text
from annotator.review.diff import word_diff
from api.client import QueueClient
from api.models import Role
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
            await pilot.press("enter", "enter")  # intent and flags as they were
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
