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

import math
import statistics
import zlib
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

from rapidfuzz.distance import Levenshtein

# numpy is imported where it is used: a report read from stored figures never needs it, and the
# command starts ~0.3 s sooner without it.
if TYPE_CHECKING:
    import numpy as np

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
    import numpy as np

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
    import numpy as np

    n_u = counts.sum(axis=1)
    o_u = (n_u**2 - (counts**2).sum(axis=1)) / (n_u - 1)
    n = weights @ n_u
    n_c = weights @ counts
    expected = n**2 - (n_c**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * (weights @ o_u) / expected, np.nan)


def _defined(counts: np.ndarray) -> bool:
    # One value everywhere: expected disagreement is zero and alpha has no value.
    import numpy as np

    return counts.shape[0] > 0 and int(np.count_nonzero(counts.sum(axis=0))) >= 2


def nominal_alpha(units: Sequence[Sequence[Hashable]], *, interval: bool = True) -> Estimate:
    """Krippendorff's alpha (nominal) of `units` (each the values its annotators gave), with a
    percentile bootstrap interval (over units) below `SMALL_SAMPLE` units."""
    return alpha_from_counts(_value_counts(units), interval=interval)


def _interval(draws: np.ndarray) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles (nearest rank) of the defined draws, or None when fewer
    than half of them are defined."""
    import numpy as np

    values = np.sort(draws[~np.isnan(draws)])
    if len(values) < len(draws) // 2 or len(values) == 0:
        return None
    last = len(values) - 1
    return float(values[round(0.025 * last)]), float(values[round(0.975 * last)])


def alpha_from_counts(counts: np.ndarray, *, interval: bool = True) -> Estimate:
    """`nominal_alpha` from a units × values count matrix (units with >= 2 values)."""
    import numpy as np

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


def _stream(key: str) -> np.random.Generator:
    # One generator per sample, seeded by its name: a sample's interval depends on its own units
    # only, so a figure stored per pair of people equals a fresh computation of that pair.
    import numpy as np

    return np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])


def pairs_alpha(
    pairs: Sequence[tuple[Sequence[Hashable], Sequence[Hashable]]],
    *,
    keys: Sequence[str] | None = None,
    rounds: int = PAIR_BOOTSTRAP_ROUNDS,
) -> list[Estimate]:
    """`nominal_alpha` for many samples of two-value units at once (per pair of people: their two
    answers on each shared clip), point estimates and bootstrap intervals, in array operations
    over all pairs together: the report has thousands of pairs. With two values a unit's o_u is
    2 when they differ, else 0; so alpha = 1 - (n - 1) * 2D / (n^2 - sum_c n_c^2), n = 2U, D the
    disagreeing units. `keys` name the samples (each draws from its own seeded stream; by
    default their positions)."""
    import numpy as np

    count = len(pairs)
    if count == 0:
        return []
    names = list(keys) if keys is not None else [str(i) for i in range(count)]
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
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # Pairs in chunks of about `budget` drawn units (rounds x units): bounded memory.
    budget = max(1, 4_000_000 // max(1, rounds))
    at = 0
    while rounds and at < len(chosen):
        chunk = [int(chosen[at])]
        used = int(sizes[chosen[at]])
        at += 1
        while at < len(chosen) and used + int(sizes[chosen[at]]) <= budget:
            chunk.append(int(chosen[at]))
            used += int(sizes[chosen[at]])
            at += 1
        # rounds x the chunk's units: each pair's columns are draws among its own units.
        picked = np.concatenate(
            [
                starts[i] + _stream(names[i]).integers(0, sizes[i], size=(rounds, sizes[i]))
                for i in chunk
            ],
            axis=1,
        )
        slot_pair = np.repeat(np.arange(len(chunk)), sizes[chunk])
        group = (np.arange(rounds)[:, None] * len(chunk) + slot_pair).ravel()
        draws = alphas(
            picked.ravel(), group, rounds * len(chunk), np.tile(n[chunk], rounds)
        ).reshape(rounds, len(chunk))
        for column, index in enumerate(chunk):
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
    import numpy as np

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


# ---------------------------------------------------------------- per clip, per pair

#: The report's series: this many hours up to now, one point an hour.
SERIES_HOURS = 12


@dataclass(frozen=True, slots=True)
class PairUnit:
    """Two people's answers on one clip both annotated (`a` < `b` by name)."""

    clip_id: str
    a: str
    b: str
    wer: float
    intent_a: str
    intent_b: str
    flags_a: frozenset[str]
    flags_b: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClipFigures:
    """What the report needs of one (non-gold) clip, worked out once: `api.server.quality_figures`
    stores it; `build_report` uses it for clips with >= 2 annotations."""

    clip_id: str
    locale: str
    annotations: int
    #: intent -> how many of its annotations gave it.
    intents: dict[str, int]
    #: n_u^2 - sum_c n_uc^2: ordered pairs of its annotations whose intents differ.
    intent_disagreement: int
    intents_differ: bool
    flags_differ: bool
    worst_wer: float
    pairs: list[PairUnit]
    #: flag -> how many of its annotations carry it (flags someone gave).
    flag_yes: dict[str, int]

    def disagreed(self, limits: Thresholds) -> bool:
        return self.intents_differ or self.flags_differ or self.worst_wer > limits.max_pair_wer


def clip_figures(group: Sequence[Label]) -> ClipFigures:
    intents = Counter(x.intent for x in group)
    units = [
        PairUnit(
            a.clip_id,
            a.annotator,
            b.annotator,
            pair_wer(a.transcript, b.transcript),
            a.intent,
            b.intent,
            a.flags,
            b.flags,
        )
        for a, b in combinations(sorted(group, key=lambda x: x.annotator), 2)
    ]
    return ClipFigures(
        clip_id=group[0].clip_id,
        locale=group[0].locale,
        annotations=len(group),
        intents=dict(intents),
        intent_disagreement=len(group) ** 2 - sum(c * c for c in intents.values()),
        intents_differ=len(intents) > 1,
        flags_differ=len({x.flags for x in group}) > 1,
        worst_wer=max((u.wer for u in units), default=0.0),
        pairs=units,
        flag_yes=dict(Counter(f for x in group for f in x.flags)),
    )


def _pair_key(a: str, b: str, flag: str = "") -> str:
    return f"{a}\x1f{b}\x1f{flag}"


def people_pairs(
    shared: Mapping[tuple[str, str], Sequence[PairUnit]], flag_names: Sequence[str] | None
) -> dict[tuple[str, str], Agreement]:
    """Agreement per pair of people over the clips both annotated: mean pair WER, intent alpha
    and, for each flag either of them gave (of `flag_names`; None: any), that flag's alpha;
    intervals below `SMALL_SAMPLE` clips. Units in clip order, each sample on its own seeded
    stream: a pair's figures depend on its own clips only (they are stored per pair and must
    equal a fresh computation)."""
    ordered = {k: sorted(v, key=lambda u: u.clip_id) for k, v in sorted(shared.items())}
    keys: list[str] = []
    samples: list[tuple[list[Hashable], list[Hashable]]] = []
    owners: list[tuple[tuple[str, str], str | None]] = []
    known = None if flag_names is None else set(flag_names)
    for (a, b), units in ordered.items():
        keys.append(_pair_key(a, b))
        samples.append(([u.intent_a for u in units], [u.intent_b for u in units]))
        owners.append(((a, b), None))
        given: set[str] = set().union(*(u.flags_a | u.flags_b for u in units))
        if known is not None:
            given &= known
        for name in sorted(given):
            keys.append(_pair_key(a, b, name))
            samples.append(([name in u.flags_a for u in units], [name in u.flags_b for u in units]))
            owners.append(((a, b), name))
    estimates = pairs_alpha(samples, keys=keys)
    intent: dict[tuple[str, str], Estimate] = {}
    flags: dict[tuple[str, str], dict[str, Estimate]] = defaultdict(dict)
    for (pair, flag), est in zip(owners, estimates, strict=True):
        if flag is None:
            intent[pair] = est
        else:
            flags[pair][flag] = est
    return {
        pair: Agreement(
            clips=len(units),
            mean_pair_wer=statistics.fmean(u.wer for u in units),
            intent_alpha=intent[pair],
            flag_alpha=flags.get(pair, {}),
        )
        for pair, units in ordered.items()
    }


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
class HourRow:
    """One hour of the series (`start`: its first second, epoch seconds): annotations made in it,
    and of those on gold clips, how many had the gold intent."""

    start: float
    annotations: int
    gold: int
    gold_correct: int

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold if self.gold else None


@dataclass(frozen=True, slots=True)
class Report:
    people: list[PersonRow]
    locales: list[VolumeRow]
    intents: list[VolumeRow]
    overall: Agreement
    pairs: list[PairRow] = field(default_factory=list)
    #: The last `SERIES_HOURS` hours, oldest first (empty when the report was asked for no time).
    series: list[HourRow] = field(default_factory=list)


def series_start(now: float, hours: int = SERIES_HOURS) -> float:
    """The first second of the series' first hour (hours are aligned to the hour, UTC)."""
    return (math.floor(now / 3600) - hours + 1) * 3600.0


def hour_series(
    points: Iterable[tuple[float, bool, bool]], now: float, hours: int = SERIES_HOURS
) -> list[HourRow]:
    """`points`: (created_at, on a gold clip, gold intent matched) per annotation."""
    first = series_start(now, hours)
    counts = [[0, 0, 0] for _ in range(hours)]
    for at, on_gold, correct in points:
        slot = int((at - first) // 3600)
        if 0 <= slot < hours:
            c = counts[slot]
            c[0] += 1
            c[1] += on_gold
            c[2] += on_gold and correct
    return [HourRow(first + 3600.0 * h, c[0], c[1], c[2]) for h, c in enumerate(counts)]


def person_row(
    who: str,
    clips: int,
    timed: Sequence[float],
    gold: GoldScore,
    shared_clips: int,
    shared_wer: Sequence[float],
    shared_intent: Sequence[bool],
) -> PersonRow:
    seconds = math.fsum(timed)
    return PersonRow(
        annotator=who,
        clips=clips,
        clips_per_hour=len(timed) / (seconds / 3600) if seconds > 0 else None,
        median_seconds=statistics.median(timed) if timed else None,
        gold=gold,
        shared_clips=shared_clips,
        wer_with_others=statistics.fmean(shared_wer) if shared_wer else None,
        intent_agreement=sum(shared_intent) / len(shared_intent) if shared_intent else None,
    )


def build_report(
    labels: Sequence[Label],
    gold: Mapping[str, Expected],
    flag_names: Sequence[str],
    limits: Thresholds = DEFAULT_LIMITS,
    now: float | None = None,
) -> Report:
    """The quality report over every annotation (`labels`) and the gold answers (`gold`, by clip
    id), computed directly: the definition `api.server.quality_figures` (stored figures, SQL
    aggregates) is held to. Gold clips count in a person's volume and accuracy, not in agreement
    or disagreement. `now`: the series' end (none without it)."""
    groups = by_clip(labels)
    work = [g for cid, g in groups.items() if cid not in gold]
    figures = {g[0].clip_id: clip_figures(g) for g in work if len(g) >= 2}

    mine: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        mine[label.annotator].append(label)
    shared_wer: dict[str, list[float]] = defaultdict(list)
    shared_intent: dict[str, list[bool]] = defaultdict(list)
    by_pair: dict[tuple[str, str], list[PairUnit]] = defaultdict(list)
    for f in figures.values():
        for u in f.pairs:
            for who in (u.a, u.b):
                shared_wer[who].append(u.wer)
                shared_intent[who].append(u.intent_a == u.intent_b)
            by_pair[(u.a, u.b)].append(u)

    people = [
        person_row(
            who,
            len(own),
            [x.active_seconds for x in own if x.active_seconds is not None],
            gold_score([(x, gold[x.clip_id]) for x in own if x.clip_id in gold], flag_names),
            sum(1 for x in own if x.clip_id in figures),
            shared_wer[who],
            shared_intent[who],
        )
        for who, own in sorted(mine.items())
    ]

    by_locale: dict[str, list[tuple[Label, bool, bool]]] = defaultdict(list)
    by_intent: dict[str, list[tuple[Label, bool, bool]]] = defaultdict(list)
    for g in work:
        found = figures.get(g[0].clip_id)
        d = found is not None and found.disagreed(limits)
        for x in g:
            by_locale[x.locale].append((x, found is not None, d))
            by_intent[x.intent].append((x, found is not None, d))

    series = (
        hour_series(
            (
                (
                    x.created_at,
                    x.clip_id in gold,
                    x.clip_id in gold and gold[x.clip_id].intent == x.intent,
                )
                for x in labels
            ),
            now,
        )
        if now is not None
        else []
    )
    agreed = people_pairs(by_pair, flag_names)
    return Report(
        people=people,
        locales=_volume(by_locale),
        intents=_volume(by_intent),
        overall=agreement(
            work, flag_names, pair_wers=[u.wer for f in figures.values() for u in f.pairs]
        ),
        pairs=[PairRow(a, b, agreed[(a, b)]) for a, b in sorted(agreed)],
        series=series,
    )


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
