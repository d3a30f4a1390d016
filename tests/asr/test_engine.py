"""The real engine on bundled demo clips, through the real commands and the real server.

CPU: three short clips on one thread (a few seconds), plus one clip whose stored audio is junk.
"""

from __future__ import annotations

import json
from pathlib import Path

import jiwer
import pytest

from api.client import QueueClient
from api.server.asr.status import asr_status
from tests.asr.support import db_args, run
from tests.fixtures.server import DEMO_CLIPS_DIR, LiveServer, open_repo

pytestmark = pytest.mark.slow

#: Measured 0.19 together (tiny.en on these espeak-ng clips); the bound leaves room for a
#: different CPU's rounding, not for a broken engine (which scores near 1).
WER_BOUND = 0.35
CLIPS = ("play_jazz_kitchen.opus", "meetings_thursday.flac", "lights_off_living_room.wav")


def _truths() -> dict[str, str]:
    manifest = json.loads((DEMO_CLIPS_DIR / "manifest.json").read_text())
    entries = manifest["clips"] if isinstance(manifest, dict) else manifest
    return {e["file"]: e["text"].lower() for e in entries}


def spoil_audio(server: LiveServer, clip_id: str, junk: bytes) -> None:
    """Overwrite a queued clip's stored bytes, wherever its backend keeps them."""
    repo = open_repo(server.db, server.data_dir)
    try:
        target = next(t for t in repo.undrafted_clips() if t.clip_id == clip_id)
        if server.backend == "postgres":
            with repo._write() as conn:
                conn.execute("UPDATE audio SET data = %s WHERE sha256 = %s", (junk, target.sha256))
        else:
            repo.audio.path_for(target.sha256).write_bytes(junk)
    finally:
        repo.close()


def test_backfill_drafts_queued_clips_and_names_the_one_it_cannot_read(
    live_server: LiveServer, tmp_path: Path
) -> None:
    assert asr_status().available, asr_status().detail  # the asr extra is part of `make setup`
    paths = [DEMO_CLIPS_DIR / name for name in CLIPS]
    ids = live_server.ingest([*paths, DEMO_CLIPS_DIR / "coffee.opus"])
    by_id = dict(zip(ids, [*CLIPS, "coffee.opus"], strict=True))
    # The stored bytes of one clip go bad after ingest: the engine must name it and move on.
    spoil_audio(live_server, ids[-1], b"\x00not audio at all\x00" * 64)

    done = run(
        "asr",
        "backfill",
        *db_args(live_server),
        "--asr-workers",
        "2",  # two transcriptions at once share one model
        home=tmp_path,
    )
    assert done.returncode == 1, done.stderr  # one clip kept no draft
    assert "no draft coffee.opus:" in done.stderr
    assert "ASR: 3 clips drafted" in done.stderr and "1 without a draft" in done.stderr

    assert "ASR drafts: faster-whisper tiny.en int8" in live_server.log_path.read_text()
    leases = QueueClient(live_server.url, live_server.annotator_token).lease(count=10).leases
    clips = {by_id[lease.clip.clip_id]: lease.clip for lease in leases}
    assert clips["coffee.opus"].asr_hint is None and clips["coffee.opus"].asr_words is None
    truths = _truths()
    refs, hyps = [], []
    for name in CLIPS:
        clip = clips[name]
        assert clip.asr_hint and clip.asr_words, name
        assert " ".join(w.word for w in clip.asr_words) == clip.asr_hint
        assert all(0 <= w.confidence <= 1 for w in clip.asr_words)
        assert len(clip.suggested_intents) == 3
        refs.append(truths[name])
        hyps.append(clip.asr_hint)
    assert jiwer.wer(refs, hyps) <= WER_BOUND, list(zip(refs, hyps, strict=True))
    assert clips["play_jazz_kitchen.opus"].suggested_intents[0] == "play_music"
    assert "calendar_query" in clips["meetings_thursday.flac"].suggested_intents

    again = run(
        "asr",
        "backfill",
        *db_args(live_server),
        home=tmp_path,
    )  # drafted clips are not drafted twice; the unreadable one is named again
    assert "ASR: 0 clips drafted" in again.stderr and "no draft coffee.opus" in again.stderr


@pytest.mark.one_backend  # the drafting path is the backfill's, run on both backends above
def test_ingest_with_asr_drafts_what_it_queued(live_server: LiveServer, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "jazz.opus").write_bytes((DEMO_CLIPS_DIR / "play_jazz_kitchen.opus").read_bytes())
    done = run(
        "ingest",
        str(incoming),
        "--asr",
        "--asr-workers",
        "1",
        *db_args(live_server),
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "ASR: 1 clip drafted" in done.stderr and "1 clip ingested" in done.stderr
    [lease] = QueueClient(live_server.url, live_server.annotator_token).lease(count=5).leases
    assert lease.clip.asr_words is not None
    assert lease.clip.asr_hint == "play some jazz in the kitchen"


def test_a_long_clip_goes_through_the_vad(tmp_path: Path) -> None:
    """Past VAD_FROM_S the silences are cut before decoding (and the draft is still right)."""
    import numpy as np

    from api.server.asr.engine import SAMPLE_RATE
    from api.server.asr.whisper import VAD_FROM_S, WhisperEngine

    engine = WhisperEngine(threads=1)
    speech = engine.decode((DEMO_CLIPS_DIR / "play_jazz_kitchen.opus").read_bytes())
    quiet = np.random.default_rng(1).normal(0, 1e-4, int(VAD_FROM_S * SAMPLE_RATE))
    long_clip = np.concatenate([quiet, speech, quiet]).astype(np.float32)
    seen: list[dict[str, object]] = []
    real = engine._model.transcribe

    def spy(samples: object, **options: object) -> object:
        seen.append(options)
        return real(samples, **options)

    engine._model.transcribe = spy  # type: ignore[method-assign]
    truth = "play some jazz in the kitchen"
    assert jiwer.wer(truth, engine.transcribe(long_clip).text) <= 0.2  # measured: one word
    assert engine.transcribe(speech).text == truth
    assert [o["vad_filter"] for o in seen] == [True, False]
