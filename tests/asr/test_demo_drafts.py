"""The demo's bundled clips carry the real engine's drafts (scripts/make_demo_clips.py), and the
demo's ingest queues them as machine drafts: the lease carries the same words and confidences."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jiwer
import pytest

from annotator import launch
from api.client import QueueClient
from api.models import LOW_CONFIDENCE
from api.server.asr.stored_drafts import load_draft_words
from tests.fixtures.server import DEMO_CLIPS_DIR

#: Re-drafting a clip may differ from the stored draft by this much (WER over the clips checked):
#: decoding is greedy at temperature 0, but CTranslate2's threaded int8 kernels may still round
#: a near tie the other way. Measured: 0.0.
REDRAFT_WER_BOUND = 0.05
#: The stored drafts against what was said, punctuation and case aside (measured 0.31 over the
#: 29 clips with speech: tiny.en on espeak-ng voices, some with noise or from across the room).
TRUTH_WER_BOUND = 0.40


def _manifest() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((DEMO_CLIPS_DIR / "manifest.json").read_text())
    return entries


def test_every_bundled_clip_has_a_machine_draft_with_word_confidences() -> None:
    entries = _manifest()
    speech = [e for e in entries if e["text"]]
    for e in entries:
        words = e["asr_words"]
        assert " ".join(w for w, _ in words) == e["asr_hint"], e["file"]
        assert all(0.0 <= c <= 1.0 for _, c in words), e["file"]
    assert not next(e for e in entries if e["intent"] == "no_speech")["asr_words"]
    said = [re.sub(r"[^\w' ]", "", e["text"].lower()) for e in speech]
    truth = jiwer.wer(said, [e["asr_hint"] for e in speech])
    assert truth <= TRUTH_WER_BOUND
    # Some words are unsure, so the demo shows the underline; most are not.
    confidences = [c for e in entries for _, c in e["asr_words"]]
    low = sum(c < LOW_CONFIDENCE for c in confidences)
    assert 0 < low < len(confidences) / 2


@pytest.mark.slow
def test_the_stored_drafts_are_what_the_engine_makes() -> None:
    from api.server.asr.whisper import WhisperEngine

    engine = WhisperEngine(workers=1, threads=2)
    checked = _manifest()[::3]  # a third of them (≈ 35 s of audio): the test stays short
    fresh = [
        engine.transcribe(engine.decode((DEMO_CLIPS_DIR / e["file"]).read_bytes())).text
        for e in checked
    ]
    stored = [e["asr_hint"] for e in checked]
    pairs = [(s, f) for s, f in zip(stored, fresh, strict=True) if s or f]
    assert all(s or f for s, f in pairs)
    assert jiwer.wer([s for s, _ in pairs], [f for _, f in pairs]) <= REDRAFT_WER_BOUND


def test_the_demo_ingest_carries_the_drafts_to_the_lease(tmp_path: Path) -> None:
    by_hint = {e["asr_hint"]: e for e in _manifest() if e["asr_hint"]}
    with launch._demo_server(tmp_path / "demo", clips=None) as (url, token):
        leases = QueueClient(url, token).lease(count=5).leases
    assert len(leases) == 5
    for lease in leases:
        clip = lease.clip
        entry = by_hint[clip.asr_hint or ""]
        assert clip.asr_words is not None  # present: the editor marks it as a machine draft
        assert [[w.word, w.confidence] for w in clip.asr_words] == entry["asr_words"]
        assert len(clip.suggested_intents) == 3


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"file": "a.wav", "asr_hint": "hi there", "asr_words": [["hi", 0.9]]}', "must spell"),
        ('{"file": "a.wav", "asr_hint": "hi", "asr_words": "hi"}', "must be a list"),
        ('{"file": "a.wav", "asr_hint": "hi", "asr_words": [["hi", 1.5]]}', "from 0 to 1"),
        ('{"file": "a.wav", "asr_hint": "hi", "asr_words": [["hi"]]}', "[word, confidence]"),
        ('{"file": "a.wav", "asr_hint": "a b", "asr_words": [["a b", 0.5]]}', "without blanks"),
    ],
)
def test_a_malformed_stored_draft_is_named_by_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "hints.jsonl"
    path.write_text('{"file": "ok.wav", "asr_hint": "plain hint"}\n' + line + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: ")) as caught:
        load_draft_words(path)
    assert message in str(caught.value)


def test_stored_drafts_are_read_beside_plain_hints(tmp_path: Path) -> None:
    path = tmp_path / "hints.jsonl"
    path.write_text(
        '{"file": "plain.wav", "asr_hint": "a hint"}\n'
        '{"file": "d/drafted.wav", "asr_hint": "hi there",'
        ' "asr_words": [["hi", 0.9], ["there", 0.2]]}\n'
        '{"file": "silent.wav", "asr_hint": "", "asr_words": []}\n'
    )
    assert load_draft_words(path) == {
        "drafted.wav": [("hi", 0.9), ("there", 0.2)],  # by base name, as plain hints are
        "silent.wav": [],
    }
