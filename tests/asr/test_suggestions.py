"""Intent suggestions: the descriptions find what people search for, the lease carries the top
three, training on accepted annotations beats the cold start on held-out rows, gold never trains."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from api.client import QueueClient
from api.server.intents.classifier import MIN_ROWS, IntentModel, TrainingRow, fit, train
from api.server.intents.coldstart import ColdStart
from api.server.intents.model_store import IntentModelStore
from api.server.intents.suggester import RELOAD_SECONDS, Suggester
from api.taxonomy import load_taxonomy
from tests.fixtures.server import LiveServer, open_repo, wav_bytes

TAXONOMY = load_taxonomy(None)


@pytest.mark.parametrize(
    ("query", "intent"),
    [
        ("remind", "calendar_set"),
        ("tv", "not_device_directed"),
        ("accident", "not_device_directed"),
        ("other", "not_device_directed"),
        ("noise", "no_speech"),
        ("none", "no_speech"),
        ("turn of the lights in the living room", "iot_hue_lightoff"),
        ("what's the weather going to be like in leads this weekend", "weather_query"),
    ],
)
def test_descriptions_and_examples_find_the_intent(query: str, intent: str) -> None:
    assert intent in ColdStart(TAXONOMY.intents).rank(query, 3)


def test_every_intent_has_a_real_description_and_examples() -> None:
    for i in TAXONOMY.intents:
        assert i.description != i.id.replace("_", " "), i.id
        assert len(i.examples) >= 4, i.id


def test_the_lease_carries_suggestions_and_draft_words(
    live_server: LiveServer, tmp_path: Path
) -> None:
    paths = []
    for n, name in enumerate(["lights", "silent", "plain"]):
        path = tmp_path / f"{name}.wav"
        path.write_bytes(wav_bytes(n))
        paths.append(path)
    ids = live_server.ingest(paths)
    repo = open_repo(live_server.db, live_server.data_dir)
    try:
        words = [("switch", 0.9), ("off", 0.4), ("the", 0.95), ("kitchen", 0.9), ("lights", 0.8)]
        assert repo.set_draft(ids[0], "switch off the kitchen lights", words)
        assert repo.set_draft(ids[1], None, [])  # the recogniser heard nothing
        assert not repo.set_draft(ids[0], "again", [])  # a draft is never overwritten
    finally:
        repo.close()
    leases = QueueClient(live_server.url, live_server.annotator_token).lease(count=5).leases
    clips = {lease.clip.clip_id: lease.clip for lease in leases}
    lights, silent, plain = (clips[i] for i in ids)
    assert lights.asr_hint == "switch off the kitchen lights"
    assert [(w.word, w.confidence) for w in lights.asr_words or []] == words
    assert "iot_hue_lightoff" in lights.suggested_intents and len(lights.suggested_intents) == 3
    assert silent.asr_hint is None and silent.asr_words == []
    assert silent.suggested_intents[0] == "no_speech"
    assert plain.asr_words is None and plain.suggested_intents == []


# ---------------------------------------------------------------- training

# A deployment's own words for its intents: jargon the shipped descriptions do not hold.
_JARGON = {
    "iot_hue_lighton": ["flick the glow {p}", "glow up the {p}", "{p} glow now"],
    "iot_hue_lightoff": ["kill the glow in the {p}", "{p} glow out", "no glow {p}"],
    "play_music": ["spin some tunes in the {p}", "tunes on in the {p}", "blast tunes {p}"],
    "weather_query": ["sky report for the {p}", "what's the sky doing at the {p}", "sky check {p}"],
    "takeaway_order": ["grub run to the {p}", "get grub from the {p}", "grub delivery {p}"],
    "alarm_set": ["buzz me at the {p}", "set the buzzer for the {p}", "buzzer at {p}"],
}
_PLACES = ["kitchen", "den", "attic", "porch", "yard", "loft", "studio", "cellar", "office"]


def jargon_rows(n: int, seed: int) -> list[TrainingRow]:
    rng = random.Random(seed)
    intents = sorted(_JARGON)
    rows = []
    for k in range(n):
        intent = intents[k % len(intents)]
        text = rng.choice(_JARGON[intent]).format(p=rng.choice(_PLACES))
        rows.append(TrainingRow(f"clip{seed}-{k}", text, intent))
    return rows


NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(new_db_url: Callable[[Path], str], tmp_path: Path) -> Iterator[IntentModelStore]:
    """Intent models in a new queue database of the backend under test."""
    repo = open_repo(new_db_url(tmp_path / "q"), tmp_path / "data")
    yield IntentModelStore(repo)
    repo.close()


def test_training_beats_the_cold_start_on_held_out_rows(store: IntentModelStore) -> None:
    report = store.put(train(jargon_rows(120, seed=1), TAXONOMY.intents), NOW)
    assert report.rows == 120 and report.held_out == 24
    assert report.top1 > report.coldstart_top1 + 0.3  # the jargon is learnt
    assert report.top3 >= report.coldstart_top3
    assert report.deployed and report.version == 1
    assert store.deployed_version() == 1 and store.reports() == [report]
    # Fresh rows the model never saw, ranked by what the server serves.
    unseen = jargon_rows(30, seed=2)
    trained, cold = Suggester(TAXONOMY, store), Suggester(TAXONOMY, None)
    hit = sum(r.intent == trained.suggest(r.text)[0] for r in unseen)
    cold_hit = sum(r.intent == cold.suggest(r.text)[0] for r in unseen)
    assert hit > cold_hit and hit >= 24
    assert trained.version == 1


def test_training_never_sees_gold_answers() -> None:
    rows = jargon_rows(100, seed=3)
    gold = [TrainingRow(f"gold-{k}", "zebracorn quasar telemetry", "qa_stock") for k in range(20)]
    trained = train(rows + gold, TAXONOMY.intents, gold_clip_ids={g.clip_id for g in gold})
    assert trained.gold_excluded == 20 and trained.rows == 100
    model = IntentModel.from_bytes(trained.model.to_bytes())
    assert not any("zebracorn" in term or "quasar" in term for term in model.space.vocabulary)
    # The same rows without the exclusion do teach those words: the check above can fail.
    leaky = fit(rows + gold)
    assert "w:zebracorn" in leaky.space.vocabulary


def test_too_few_annotations_keep_the_cold_start() -> None:
    with pytest.raises(ValueError, match=f"needs {MIN_ROWS}"):
        train(jargon_rows(MIN_ROWS - 1, seed=4), TAXONOMY.intents)


def test_serving_scores_equal_scikit_learn() -> None:
    """The numpy-only serving path computes what scikit-learn would (no pickle needed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from api.server.intents.features import features

    rows = jargon_rows(90, seed=5)
    loaded = IntentModel.from_bytes(fit(rows).to_bytes())
    vec = TfidfVectorizer(analyzer=features, sublinear_tf=True)
    x = vec.fit_transform([r.text for r in rows])
    ref = LogisticRegression(C=20.0, max_iter=2000).fit(x, [r.intent for r in rows])
    for text in ["glow up the porch", "sky report please", "grub from the yard now"]:
        expected = ref.predict_proba(vec.transform([text]))[0]
        assert np.allclose(loaded.scores(text), expected, atol=1e-6)


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    import api.server.intents.suggester as module

    later = module.time.monotonic() + seconds
    monkeypatch.setattr(module.time, "monotonic", lambda: later)


def test_a_new_version_is_picked_up_without_a_restart(
    store: IntentModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    suggester = Suggester(TAXONOMY, store)
    assert suggester.suggest("flick the glow loft")  # cold start, no model yet
    assert suggester.version == 0
    store.put(train(jargon_rows(120, seed=6), TAXONOMY.intents), NOW)
    assert suggester.version == 0  # within RELOAD_SECONDS the version in hand serves
    _later(monkeypatch, RELOAD_SECONDS + 1)
    assert suggester.suggest("flick the glow loft")[0] == "iot_hue_lighton"
    assert suggester.version == 1


def test_versions_count_up_and_an_undeployed_or_broken_one_never_serves(
    store: IntentModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.put(train(jargon_rows(120, seed=7), TAXONOMY.intents), NOW)
    # A version that did worse than the cold start on its held-out rows is kept, not served.
    worse = replace(train(jargon_rows(120, seed=8), TAXONOMY.intents), top3=0.0)
    second = store.put(worse, NOW)
    assert (first.version, first.deployed, second.version, second.deployed) == (1, True, 2, False)
    assert store.deployed_version() == 1
    third = store.put(train(jargon_rows(120, seed=9), TAXONOMY.intents), NOW)
    assert third.version == 3 and store.deployed_version() == 3
    repo = store.repo
    with repo._write() as conn:  # v3's bytes spoiled: v1, the newest that loads, serves
        repo._x(conn, "UPDATE intent_models SET model = ? WHERE version = 3", (b"not a model",))
    found = store.load_deployed()
    assert found is not None and found[0] == 1
    suggester = Suggester(TAXONOMY, store)
    assert suggester.suggest("flick the glow loft") and suggester.version == 1
