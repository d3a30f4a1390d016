"""The quality rules as pure functions over fetched rows: word error rate, accuracy against gold,
agreement (pairwise WER, Krippendorff's alpha), when a clip needs a reviewer, and the report.

No SQL, no IO, no clock: `api.server.quality_store` reads the rows, these decide. Definitions
(the tests hold each to a direct formula):

- WER of a hypothesis against a reference: word edit distance / reference words (`jiwer.wer`;
  jiwer's default normalisation: split on whitespace, nothing else). An empty reference gives 0
  for an empty hypothesis and 1 otherwise (jiwer refuses it).
- Pair WER of two transcripts (neither is the reference): the larger of the two directions, so a
  pair is "within 0.2" only when each transcript, taken as the reference, keeps the other within
  0.2. Computed as edit distance / min(words) through rapidfuzz (what jiwer uses underneath), one
  distance per pair: the report walks 100,000 annotations in well under a second.
- Krippendorff's alpha, nominal, over units with >= 2 values; None where it is undefined (fewer
  than two pairable values, or one value everywhere). Flags are one binary variable each.
  Intervals: a percentile bootstrap over units, for samples below `SMALL_SAMPLE` units. Computed
  in closed form from value counts (`_alpha_weighted`); the tests hold it to the `krippendorff`
  package and to the coincidence-matrix definition. Not the package at run time: its coincidence
  step is O(units x values^2) and took 12 s for 10,000 clips of 40 intents, and a bootstrap per
  pair of people is thousands of small samples.
- A clip needs review when its annotations disagree: an intent differs, a flag differs, or a pair's
  WER exceeds `Thresholds.max_pair_wer` (0.2).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from rapidfuzz.distance import Levenshtein

#: Below this many units an agreement figure gets a bootstrap interval.
SMALL_SAMPLE = 200
BOOTSTRAP_ROUNDS = 400
#: Per pair of people (thousands of pairs): fewer rounds, the interval's ends still settle.
PAIR_BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 12


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_pair_wer: float = 0.2


DEFAULT_LIMITS = Thresholds()


@dataclass(frozen=True, slots=True)
class Label:
    """One annotation, as the quality rules need it."""

    annotation_id: str
    clip_id: str
    annotator: str
    transcript: str
    intent: str
    flags: frozenset[str]
    created_at: float = 0.0
    active_seconds: float | None = None
    locale: str = ""


@dataclass(frozen=True, slots=True)
class Expected:
    """A gold clip's answer."""

    transcript: str
    intent: str
    flags: frozenset[str]


# ---------------------------------------------------------------- word error rate


def words(text: str) -> list[str]:
    return text.split()


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    return int(Levenshtein.distance(a, b))


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> float | None:
    """jiwer's corpus WER over (reference, hypothesis) pairs: all edits / all reference words."""
    edits = total = seen = 0
    for reference, hypothesis in pairs:
        ref, hyp = words(reference), words(hypothesis)
        edits += edit_distance(ref, hyp)
        total += len(ref)
        seen += 1
    if total == 0:  # only empty references: as `wer` says for one
        return None if seen == 0 else (0.0 if edits == 0 else 1.0)
    return edits / total


def pair_wer(a: str, b: str) -> float:
    wa, wb = words(a), words(b)
    shortest = min(len(wa), len(wb))
    if shortest == 0:
        return 0.0 if not wa and not wb else 1.0
    return edit_distance(wa, wb) / shortest


# ---------------------------------------------------------------- gold accuracy


@dataclass(frozen=True, slots=True)
class FlagScore:
    precision: float | None
    recall: float | None
    support: int  # gold clips that carry the flag


@dataclass(frozen=True, slots=True)
class GoldScore:
    clips: int
    wer: float | None
    intent_accuracy: float | None
    flags: dict[str, FlagScore]


def gold_score(pairs: Sequence[tuple[Label, Expected]], flag_names: Sequence[str]) -> GoldScore:
    """One person's answers on gold clips against the expected ones."""
    if not pairs:
        return GoldScore(0, None, None, {})
    hits = sum(1 for got, want in pairs if got.intent == want.intent)
    flags: dict[str, FlagScore] = {}
    for name in flag_names:
        tp = sum(1 for got, want in pairs if name in got.flags and name in want.flags)
        said = sum(1 for got, _ in pairs if name in got.flags)
        truth = sum(1 for _, want in pairs if name in want.flags)
        if said or truth:
            flags[name] = FlagScore(
                precision=tp / said if said else None,
                recall=tp / truth if truth else None,
                support=truth,
            )
    return GoldScore(
        clips=len(pairs),
        wer=corpus_wer((want.transcript, got.transcript) for got, want in pairs),
        intent_accuracy=hits / len(pairs),
        flags=flags,
    )


# ---------------------------------------------------------------- agreement


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float | None
    units: int
    low: float | None = None
    high: float | None = None


def _value_counts(units: Sequence[Sequence[Hashable]]) -> np.ndarray:
    """units × distinct values: how often each value was given to each unit (pairable units)."""
    kept = [u for u in units if len(u) >= 2]
    index: dict[Hashable, int] = {}
    values = [index.setdefault(v, len(index)) for u in kept for v in u]
    rows = np.repeat(np.arange(len(kept)), [len(u) for u in kept])
    width = len(index)
    flat = np.bincount(rows * width + np.array(values, dtype=np.int64), minlength=len(kept) * width)
    return flat.reshape(len(kept), width).astype(float)


def _alpha_weighted(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Nominal alpha from value counts, for each row of `weights` (how often each unit is drawn):
    1 - (n - 1) * sum_u o_u / (n^2 - sum_c n_c^2), where o_u = (n_u^2 - sum_c n_uc^2) / (n_u - 1)
    is unit u's count of disagreeing ordered pairs (scaled) and n_c the value totals. NaN where
    undefined. Vectorised, so a bootstrap is one matrix product."""
    n_u = counts.sum(axis=1)
    o_u = (n_u**2 - (counts**2).sum(axis=1)) / (n_u - 1)
    n = weights @ n_u
    n_c = weights @ counts
    expected = n**2 - (n_c**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * (weights @ o_u) / expected, np.nan)


def _defined(counts: np.ndarray) -> bool:
    # One value everywhere: expected disagreement is zero and alpha has no value.
    return counts.shape[0] > 0 and int(np.count_nonzero(counts.sum(axis=0))) >= 2


def nominal_alpha(units: Sequence[Sequence[Hashable]], *, interval: bool = True) -> Estimate:
    """Krippendorff's alpha (nominal) of `units` (each the values its annotators gave), with a
    percentile bootstrap interval (over units) below `SMALL_SAMPLE` units."""
    return alpha_from_counts(_value_counts(units), interval=interval)


def _interval(draws: np.ndarray) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles (nearest rank) of the defined draws, or None when fewer
    than half of them are defined."""
    values = np.sort(draws[~np.isnan(draws)])
    if len(values) < len(draws) // 2 or len(values) == 0:
        return None
    last = len(values) - 1
    return float(values[round(0.025 * last)]), float(values[round(0.975 * last)])


def alpha_from_counts(counts: np.ndarray, *, interval: bool = True) -> Estimate:
    """`nominal_alpha` from a units × values count matrix (units with >= 2 values)."""
    n = counts.shape[0]
    if not _defined(counts):
        return Estimate(None, n)
    point = float(_alpha_weighted(counts, np.ones((1, n)))[0])
    if not interval or n >= SMALL_SAMPLE or n < 2:
        return Estimate(point, n)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.multinomial(n, np.full(n, 1 / n), size=BOOTSTRAP_ROUNDS).astype(float)
    bounds = _interval(_alpha_weighted(counts, draws))
    return Estimate(point, n) if bounds is None else Estimate(point, n, *bounds)


def pairs_alpha(
    pairs: Sequence[tuple[Sequence[Hashable], Sequence[Hashable]]],
    *,
    rounds: int = PAIR_BOOTSTRAP_ROUNDS,
) -> list[Estimate]:
    """`nominal_alpha` for many samples of two-value units at once (per pair of people: their two
    answers on each shared clip), point estimates and bootstrap intervals, in array operations
    over all pairs together: the report has thousands of pairs. With two values a unit's o_u is
    2 when they differ, else 0; so alpha = 1 - (n - 1) * 2D / (n^2 - sum_c n_c^2), n = 2U, D the
    disagreeing units."""
    count = len(pairs)
    if count == 0:
        return []
    sizes = np.array([len(first) for first, _ in pairs], dtype=np.int64)
    total = int(sizes.sum())
    # Values are coded per pair (0, 1, ... within each pair): the count arrays below are pairs x
    # the widest pair's distinct values, not pairs x every value in the taxonomy.
    first_codes: list[int] = []
    second_codes: list[int] = []
    width = 1
    for first, second in pairs:
        local: dict[Hashable, int] = {}
        first_codes += [local.setdefault(v, len(local)) for v in first]
        second_codes += [local.setdefault(v, len(local)) for v in second]
        width = max(width, len(local))
    a = np.array(first_codes, dtype=np.int64)
    b = np.array(second_codes, dtype=np.int64)
    differ = (a != b).astype(float)
    owner = np.repeat(np.arange(count), sizes)
    n = 2.0 * sizes

    def alphas(units: np.ndarray, group: np.ndarray, groups: int, n: np.ndarray) -> np.ndarray:
        d = np.bincount(group, weights=differ[units], minlength=groups)
        cells = groups * width
        n_c = np.bincount(group * width + a[units], minlength=cells) + np.bincount(
            group * width + b[units], minlength=cells
        )
        expected = n * n - (n_c.reshape(groups, width) ** 2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(expected > 0, 1 - (n - 1) * 2 * d / expected, np.nan)

    points = alphas(np.arange(total), owner, count, n)
    lows = np.full(count, np.nan)
    highs = np.full(count, np.nan)
    chosen = np.flatnonzero((sizes >= 2) & (sizes < SMALL_SAMPLE) & ~np.isnan(points))
    if len(chosen) and rounds:
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        slot_pair = np.repeat(np.arange(len(chosen)), sizes[chosen])
        slot_start = np.repeat(starts[chosen], sizes[chosen])
        slot_size = np.repeat(sizes[chosen], sizes[chosen])
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        draws = np.empty((rounds, len(chosen)))
        step = max(1, 4_000_000 // max(1, len(chosen) * width))  # rounds per batch: bounded memory
        for r0 in range(0, rounds, step):
            r = min(step, rounds - r0)
            picked = slot_start + (rng.random((r, len(slot_pair))) * slot_size).astype(np.int64)
            group = (np.arange(r)[:, None] * len(chosen) + slot_pair).ravel()
            draws[r0 : r0 + r] = alphas(
                picked.ravel(), group, r * len(chosen), np.tile(n[chosen], r)
            ).reshape(r, len(chosen))
        for column, index in enumerate(chosen):
            bounds = _interval(draws[:, column])
            if bounds is not None:
                lows[index], highs[index] = bounds
    return [
        Estimate(
            None if np.isnan(points[i]) else float(points[i]),
            int(sizes[i]),
            None if np.isnan(lows[i]) else float(lows[i]),
            None if np.isnan(highs[i]) else float(highs[i]),
        )
        for i in range(count)
    ]


def by_clip(labels: Iterable[Label]) -> dict[str, list[Label]]:
    grouped: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        grouped[label.clip_id].append(label)
    return grouped


@dataclass(frozen=True, slots=True)
class Agreement:
    clips: int
    mean_pair_wer: float | None
    intent_alpha: Estimate
    flag_alpha: dict[str, Estimate]


def agreement(
    groups: Sequence[Sequence[Label]],
    flag_names: Sequence[str],
    *,
    interval: bool = True,
    pair_wers: Sequence[float] | None = None,
) -> Agreement:
    """Agreement over clips with >= 2 annotations (`groups`: one clip's labels each;
    `pair_wers`: their pairs' WERs when the caller already has them)."""
    multi = [g for g in groups if len(g) >= 2]
    if pair_wers is None:
        pair_wers = [
            pair_wer(a.transcript, b.transcript) for g in multi for a, b in combinations(g, 2)
        ]
    # Flags are binary and rare: count each flag's "yes" per clip in one pass.
    sizes = np.array([len(g) for g in multi], dtype=float)
    yes = {name: np.zeros(len(multi)) for name in flag_names}
    for unit, g in enumerate(multi):
        for x in g:
            for name in x.flags:
                if name in yes:
                    yes[name][unit] += 1
    return Agreement(
        clips=len(multi),
        mean_pair_wer=statistics.fmean(pair_wers) if pair_wers else None,
        intent_alpha=nominal_alpha([[x.intent for x in g] for g in multi], interval=interval),
        flag_alpha={
            name: alpha_from_counts(
                np.column_stack([sizes - yes[name], yes[name]]).reshape(len(multi), 2),
                interval=interval,
            )
            for name in flag_names
        },
    )


def pairs_of_people(groups: Sequence[Sequence[Label]]) -> dict[tuple[str, str], list[list[Label]]]:
    """For each pair of people (sorted names), the clips both annotated: their two labels each."""
    shared: dict[tuple[str, str], list[list[Label]]] = defaultdict(list)
    for g in groups:
        for a, b in combinations(sorted(g, key=lambda x: x.annotator), 2):
            shared[(a.annotator, b.annotator)].append([a, b])
    return shared


# ---------------------------------------------------------------- adjudication


def disagreements(group: Sequence[Label], limits: Thresholds = DEFAULT_LIMITS) -> list[str]:
    """Why `group` (one clip's annotations) needs a reviewer; empty when it agrees."""
    reasons: list[str] = []
    if len({x.intent for x in group}) > 1:
        reasons.append("intent")
    if len({x.flags for x in group}) > 1:
        reasons.append("flags")
    if any(
        pair_wer(a.transcript, b.transcript) > limits.max_pair_wer
        for a, b in combinations(group, 2)
    ):
        reasons.append("transcript")
    return reasons


def consensus(group: Sequence[Label]) -> Label:
    """The annotation that stands for an agreeing clip: the transcript nearest all the others
    (least total pair WER), the earliest among equals."""
    ordered = sorted(group, key=lambda x: (x.created_at, x.annotation_id))
    return min(
        ordered,
        key=lambda x: sum(pair_wer(x.transcript, y.transcript) for y in ordered if y is not x),
    )


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class PersonRow:
    annotator: str
    clips: int
    clips_per_hour: float | None
    median_seconds: float | None
    gold: GoldScore
    #: Against everyone else on shared clips: mean pair WER, and how often the intents matched.
    shared_clips: int
    wer_with_others: float | None
    intent_agreement: float | None


@dataclass(frozen=True, slots=True)
class VolumeRow:
    key: str
    annotations: int
    clips: int
    multi_clips: int  # clips with >= 2 annotations
    disagreed: int  # of those, how many disagree (see `disagreements`)

    @property
    def disagreement(self) -> float | None:
        return self.disagreed / self.multi_clips if self.multi_clips else None


@dataclass(frozen=True, slots=True)
class PairRow:
    a: str
    b: str
    agreement: Agreement


@dataclass(frozen=True, slots=True)
class Report:
    people: list[PersonRow]
    locales: list[VolumeRow]
    intents: list[VolumeRow]
    overall: Agreement
    pairs: list[PairRow] = field(default_factory=list)


def _volume(
    keyed: Mapping[str, list[tuple[Label, bool, bool]]],
) -> list[VolumeRow]:
    rows = []
    for key, items in sorted(keyed.items()):
        clips: dict[str, tuple[bool, bool]] = {}
        for label, multi, disagreed in items:
            clips[label.clip_id] = (multi, disagreed)
        rows.append(
            VolumeRow(
                key=key,
                annotations=len(items),
                clips=len(clips),
                multi_clips=sum(1 for m, _ in clips.values() if m),
                disagreed=sum(1 for m, d in clips.values() if m and d),
            )
        )
    return rows


def build_report(
    labels: Sequence[Label],
    gold: Mapping[str, Expected],
    flag_names: Sequence[str],
    limits: Thresholds = DEFAULT_LIMITS,
) -> Report:
    """The quality report over every annotation (`labels`) and the gold answers (`gold`, by clip
    id). Gold clips count in a person's volume and accuracy, not in agreement or disagreement."""
    groups = by_clip(labels)
    work = [g for cid, g in groups.items() if cid not in gold]

    # Every pair of annotations of a (non-gold) clip, its WER worked out once.
    mine: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        mine[label.annotator].append(label)
    shared_wer: dict[str, list[float]] = defaultdict(list)
    shared_intent: dict[str, list[bool]] = defaultdict(list)
    shared_clips: Counter[str] = Counter()
    by_pair: dict[tuple[str, str], list[tuple[Label, Label, float]]] = defaultdict(list)
    all_wers: list[float] = []
    disagreed: dict[str, bool] = {}
    for g in work:
        if len(g) < 2:
            continue
        worst = 0.0
        for x in g:
            shared_clips[x.annotator] += 1
        for a, b in combinations(sorted(g, key=lambda x: x.annotator), 2):
            w = pair_wer(a.transcript, b.transcript)
            worst = max(worst, w)
            all_wers.append(w)
            same = a.intent == b.intent
            for who in (a.annotator, b.annotator):
                shared_wer[who].append(w)
                shared_intent[who].append(same)
            by_pair[(a.annotator, b.annotator)].append((a, b, w))
        disagreed[g[0].clip_id] = (
            len({x.intent for x in g}) > 1
            or len({x.flags for x in g}) > 1
            or worst > limits.max_pair_wer
        )

    people = []
    for who, own in sorted(mine.items()):
        timed = [x.active_seconds for x in own if x.active_seconds is not None]
        seconds = sum(timed)
        on_gold = [(x, gold[x.clip_id]) for x in own if x.clip_id in gold]
        people.append(
            PersonRow(
                annotator=who,
                clips=len(own),
                clips_per_hour=len(timed) / (seconds / 3600) if seconds > 0 else None,
                median_seconds=statistics.median(timed) if timed else None,
                gold=gold_score(on_gold, flag_names),
                shared_clips=shared_clips[who],
                wer_with_others=statistics.fmean(shared_wer[who]) if shared_wer[who] else None,
                intent_agreement=(
                    sum(shared_intent[who]) / len(shared_intent[who])
                    if shared_intent[who]
                    else None
                ),
            )
        )

    by_locale: dict[str, list[tuple[Label, bool, bool]]] = defaultdict(list)
    by_intent: dict[str, list[tuple[Label, bool, bool]]] = defaultdict(list)
    for g in work:
        multi = len(g) >= 2
        d = disagreed.get(g[0].clip_id, False)
        for x in g:
            by_locale[x.locale].append((x, multi, d))
            by_intent[x.intent].append((x, multi, d))

    # Per pair: transcripts and intents (flags are rare: per pair they are mostly undefined).
    ordered = sorted(by_pair.items())
    alphas = pairs_alpha(
        [([x.intent for x, _, _ in sh], [y.intent for _, y, _ in sh]) for _, sh in ordered]
    )
    pairs = [
        PairRow(
            a,
            b,
            Agreement(
                clips=len(shared),
                mean_pair_wer=statistics.fmean(w for _, _, w in shared),
                intent_alpha=alpha,
                flag_alpha={},
            ),
        )
        for ((a, b), shared), alpha in zip(ordered, alphas, strict=True)
    ]
    return Report(
        people=people,
        locales=_volume(by_locale),
        intents=_volume(by_intent),
        overall=agreement(work, flag_names, pair_wers=all_wers),
        pairs=pairs,
    )
