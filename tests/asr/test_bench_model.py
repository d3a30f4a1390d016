"""The bench's keystroke model and its data: the figures mean what bench/asr_bench.py says."""

from __future__ import annotations

import json

from api.taxonomy import load_taxonomy
from bench.asr_bench import DATA, clip_keys, filter_keys, scratch_keys, transcript_keys
from bench.asr_data.corpus import training_annotations
from bench.asr_data.make_clips import REQUESTS

IDS = [i.id for i in load_taxonomy(None).intents]


def test_corpus_never_holds_a_bench_request() -> None:
    corpus = {text for text, _ in training_annotations(5000)}
    examples = {e for i in load_taxonomy(None).intents for e in i.examples}
    for text, _ in REQUESTS:
        assert text not in corpus and text not in examples, text


def test_labels_match_the_clips_on_disk() -> None:
    rows = [json.loads(line) for line in (DATA / "labels.jsonl").read_text().splitlines()]
    assert {r["file"] for r in rows} == {p.name for p in (DATA / "clips").iterdir()}
    assert all(r["intent"] in IDS for r in rows)
    assert len({r["voice"] for r in rows}) >= 5 and len({r["sample_rate"] for r in rows}) >= 4


def test_keystrokes() -> None:
    # the shortest piece of an id no other id holds, then Enter: "wea" for weather_query
    assert filter_keys("weather_query", IDS) == 4
    assert filter_keys("weather_query", ["weather_query"]) == 2
    assert filter_keys("ab", ["ab", "xaby"]) == 3  # no piece is its own: the whole id
    assert transcript_keys("turn of the lights", "turn off the lights") == 1
    assert transcript_keys("xxxxxxxxxxxxxxxxxxxxxxx", "hi") == 3  # clear, then type "hi"
    assert transcript_keys("", "hi") == 2
    # a right draft and a suggested intent: one key to pick, one to submit
    assert clip_keys("play jazz", "play jazz", "play_music", ["play_music"], IDS) == 2
    missed = clip_keys("play jazz", "play jazz", "play_music", ["play_radio"], IDS)
    assert missed == filter_keys("play_music", IDS) + 1
    assert scratch_keys("play jazz", "play_music", IDS) == 9 + filter_keys("play_music", IDS) + 1
