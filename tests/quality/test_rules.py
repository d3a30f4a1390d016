"""The quality rules against direct formulas (issue 12): WER against jiwer, Krippendorff's alpha
against its coincidence-matrix definition (and the `krippendorff` package), gold precision and
recall by counting, the review decision, on hypothesis-generated annotation sets."""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import jiwer
import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.server.quality_rules import (
    Expected,
    Label,
    PairUnit,
    build_report,
    consensus,
    corpus_wer,
    disagreements,
    gold_score,
    nominal_alpha,
    pair_wer,
    pairs_alpha,
    people_pairs,
    wer,
)

WORDS = st.sampled_from(["set", "an", "alarm", "for", "six", "ten", "play", "jazz", "the"])
TEXT = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)
INTENTS = st.sampled_from(["alarm_set", "alarm_query", "play_music"])
FLAGS = st.frozensets(st.sampled_from(["pii", "minor", "distress"]), max_size=2)


def reference_alpha(units: list[list[object]]) -> float | None:
    """Krippendorff (2011), nominal: coincidences o_ck = sum over units of the ordered pairs of
    values (c, k) from different coders, each divided by m_u - 1; n_c = sum_k o_ck, n = sum n_c;
    alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k."""
    o: Counter[tuple[object, object]] = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for i, j in permutations(range(m), 2):
            o[(values[i], values[j])] += 1 / (m - 1)
    n_c: Counter[object] = Counter()
    for (c, _), w in o.items():
        n_c[c] += w
    n = sum(n_c.values())
    observed = sum(w for (c, k), w in o.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected


@given(TEXT, TEXT)
def test_wer_is_jiwers(reference: str, hypothesis: str) -> None:
    assert wer(reference, hypothesis) == pytest.approx(jiwer.wer(reference, hypothesis))


@given(TEXT, TEXT)
def test_pair_wer_is_the_larger_direction(a: str, b: str) -> None:
    assert pair_wer(a, b) == pytest.approx(max(jiwer.wer(a, b), jiwer.wer(b, a)))


@given(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=6))
def test_corpus_wer_is_jiwers(pairs: list[tuple[str, str]]) -> None:
    refs, hyps = zip(*pairs, strict=True)
    assert corpus_wer(pairs) == pytest.approx(jiwer.wer(list(refs), list(hyps)))


def test_empty_transcripts() -> None:
    assert wer("", "") == 0.0 and wer("", "hi") == 1.0
    assert pair_wer("", "") == 0.0 and pair_wer("", "a b") == 1.0
    assert corpus_wer([]) is None


UNITS = st.lists(st.lists(INTENTS, min_size=1, max_size=5), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(UNITS)
def test_alpha_is_the_coincidence_formula_and_the_packages(units: list[list[str]]) -> None:
    want = reference_alpha(units)  # type: ignore[arg-type]
    fast = nominal_alpha(units, interval=False).value
    if want is None:
        assert fast is None
        return
    assert fast == pytest.approx(want, abs=1e-9)
    # and the package on its own reliability-data input (coders x units, NaN for missing)
    domain = sorted({v for u in units for v in u})
    data = np.full((5, len(units)), np.nan)
    for j, unit in enumerate(units):
        for i, value in enumerate(unit):
            data[i, j] = domain.index(value)
    if sum(len(u) >= 2 for u in units):
        direct = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert direct == pytest.approx(want, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(INTENTS, INTENTS), min_size=1, max_size=30), max_size=6))
def test_pairs_alpha_is_the_general_one_for_each_pair(
    samples: list[list[tuple[str, str]]],
) -> None:
    got = pairs_alpha([([a for a, _ in u], [b for _, b in u]) for u in samples])
    assert len(got) == len(samples)
    for units, fast in zip(samples, got, strict=True):
        general = nominal_alpha([list(u) for u in units])
        assert fast.units == len(units)
        if general.value is None:
            assert fast.value is None
            continue
        assert fast.value == pytest.approx(general.value, abs=1e-9)
        assert fast.value == pytest.approx(reference_alpha([list(u) for u in units]), abs=1e-9)
        if fast.low is not None:
            assert fast.high is not None
            assert fast.low - 1e-9 <= fast.value <= fast.high + 1e-9


def test_alpha_interval_brackets_the_point_on_small_samples() -> None:
    units = [["a", "a"], ["b", "b"], ["a", "b"], ["c", "c"], ["a", "a"], ["b", "c"]] * 3
    est = nominal_alpha(units)
    assert est.value == pytest.approx(reference_alpha(units))  # type: ignore[arg-type]
    assert est.low is not None and est.high is not None
    assert est.low <= est.value <= est.high  # type: ignore[operator]
    assert nominal_alpha(units * 20).low is None  # large sample: no interval


def _label(i: int, clip: str, who: str, text: str, intent: str, flags: frozenset[str]) -> Label:
    return Label(f"a{i}", clip, who, text, intent, flags, created_at=float(i))


@given(st.lists(st.tuples(TEXT, INTENTS, FLAGS, TEXT, INTENTS, FLAGS), min_size=1, max_size=20))
def test_gold_score_counts(
    rows: list[tuple[str, str, frozenset[str], str, str, frozenset[str]]],
) -> None:
    pairs = [
        (_label(i, f"c{i}", "p", t, it, f), Expected(et, ei, ef))
        for i, (t, it, f, et, ei, ef) in enumerate(rows)
    ]
    score = gold_score(pairs, ["pii", "minor", "distress"])
    assert score.clips == len(rows)
    assert score.intent_accuracy == pytest.approx(
        sum(got.intent == want.intent for got, want in pairs) / len(pairs)
    )
    assert score.wer == pytest.approx(
        jiwer.wer([w.transcript for _, w in pairs], [g.transcript for g, _ in pairs])
    )
    for name in ("pii", "minor", "distress"):
        tp = sum(name in g.flags and name in w.flags for g, w in pairs)
        said = sum(name in g.flags for g, _ in pairs)
        truth = sum(name in w.flags for _, w in pairs)
        if not said and not truth:
            assert name not in score.flags
            continue
        assert score.flags[name].precision == (tp / said if said else None)
        assert score.flags[name].recall == (tp / truth if truth else None)


@given(st.lists(st.tuples(TEXT, INTENTS, FLAGS), min_size=2, max_size=4))
def test_disagreement_rule(answers: list[tuple[str, str, frozenset[str]]]) -> None:
    group = [_label(i, "c", f"p{i}", t, it, f) for i, (t, it, f) in enumerate(answers)]
    reasons = disagreements(group)
    assert ("intent" in reasons) == (len({a[1] for a in answers}) > 1)
    assert ("flags" in reasons) == (len({a[2] for a in answers}) > 1)
    worst = max(
        max(jiwer.wer(a[0], b[0]), jiwer.wer(b[0], a[0])) for a, b in permutations(answers, 2)
    )
    assert ("transcript" in reasons) == (worst > 0.2 + 1e-12)
    if not reasons:
        assert consensus(group) in group


def test_report_numbers_by_hand() -> None:
    g = frozenset[str]()
    labels = [
        # clip c1: both agree; c2: intents differ; gold clip g1 done by both
        Label("1", "c1", "ann", "set an alarm", "alarm_set", g, 0, 10.0, "en-US"),
        Label("2", "c1", "bob", "set an alarm", "alarm_set", g, 1, 30.0, "en-US"),
        Label("3", "c2", "ann", "play jazz", "play_music", g, 2, 20.0, "en-GB"),
        Label("4", "c2", "bob", "play the jazz", "alarm_set", g, 3, None, "en-GB"),
        Label("5", "g1", "ann", "wake me up", "alarm_set", g, 4, 30.0, "en-US"),
        Label("6", "g1", "bob", "wake up", "alarm_query", frozenset({"pii"}), 5, 50.0, "en-US"),
    ]
    gold = {"g1": Expected("wake me up", "alarm_set", frozenset({"pii"}))}
    r = build_report(labels, gold, ["pii"])
    ann, bob = r.people
    assert (ann.clips, bob.clips) == (3, 3)
    assert ann.clips_per_hour == pytest.approx(3 / (60 / 3600))  # 3 timed clips in 60 s
    assert bob.clips_per_hour == pytest.approx(2 / (80 / 3600))
    assert (ann.median_seconds, bob.median_seconds) == (20.0, 40.0)
    assert (ann.gold.wer, bob.gold.wer) == (0.0, pytest.approx(1 / 3))
    assert (ann.gold.intent_accuracy, bob.gold.intent_accuracy) == (1.0, 0.0)
    assert ann.gold.flags["pii"].recall == 0.0 and ann.gold.flags["pii"].precision is None
    assert bob.gold.flags["pii"].precision == 1.0
    # shared: c1 (WER 0, same intent), c2 ("play jazz" vs "play the jazz": 1 edit / 2 words)
    assert ann.shared_clips == 2 and ann.intent_agreement == 0.5
    assert ann.wer_with_others == pytest.approx((0 + 0.5) / 2)
    locales = {v.key: v for v in r.locales}
    assert (locales["en-GB"].disagreement, locales["en-US"].disagreement) == (1.0, 0.0)
    assert locales["en-US"].annotations == 2  # the gold clip is not in volume by locale
    intents = {v.key: v for v in r.intents}
    assert intents["play_music"].disagreed == 1 and intents["alarm_set"].clips == 2
    assert r.overall.clips == 2 and r.pairs[0].a == "ann" and r.pairs[0].b == "bob"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(INTENTS, INTENTS, FLAGS, FLAGS), min_size=1, max_size=40),
    st.lists(st.tuples(INTENTS, INTENTS, FLAGS, FLAGS), min_size=1, max_size=40),
)
def test_per_pair_flag_alpha_is_the_reference_and_each_pair_stands_alone(
    first: list[tuple[str, str, frozenset[str], frozenset[str]]],
    second: list[tuple[str, str, frozenset[str], frozenset[str]]],
) -> None:
    """Per pair of people, each flag either gave has its alpha (the reference formula and the
    `krippendorff` package) with an interval that brackets it; a pair's figures are the same
    computed alone or beside another pair (the stored per-pair figures rely on it)."""

    def units(rows: list[tuple[str, str, frozenset[str], frozenset[str]]]) -> list[PairUnit]:
        return [PairUnit(f"c{i:03d}", "ann", "bob", 0.0, *row) for i, row in enumerate(rows)]

    alone = people_pairs({("ann", "bob"): units(first)}, ["pii", "minor", "distress"])
    both = people_pairs(
        {("ann", "bob"): units(first), ("ann", "cy"): units(second)},
        ["pii", "minor", "distress"],
    )
    assert both[("ann", "bob")] == alone[("ann", "bob")]
    got = alone[("ann", "bob")].flag_alpha
    assert set(got) == set().union(*(a | b for _, _, a, b in first))
    for name, est in got.items():
        data = [[name in a for _, _, a, _ in first], [name in b for _, _, _, b in first]]
        assert est.units == len(first)
        if len({v for row in data for v in row}) < 2:
            assert est.value is None  # one value everywhere: undefined
            continue
        pairs = [list(u) for u in zip(data[0], data[1], strict=True)]
        assert est.value == pytest.approx(reference_alpha(pairs))
        package = krippendorff.alpha(
            reliability_data=np.array(data, dtype=float), level_of_measurement="nominal"
        )
        assert est.value == pytest.approx(package, abs=1e-9)
        if est.low is not None:
            assert est.high is not None and est.low - 1e-9 <= est.value <= est.high + 1e-9
