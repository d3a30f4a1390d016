"""An intent classifier trained on the deployment's own accepted annotations, stored by version.

Training (scikit-learn, in the `asr` extra): TF-IDF over `features.features` + multinomial
logistic regression, on the accepted annotations plus each intent's example phrasings (so an
intent nobody has annotated yet is still known). Rows whose clip is a gold clip are dropped
before anything else sees them — gold answers measure people, and a model that learned them
would make that measure meaningless. What serves is `Blended`: the model's probabilities plus
`BLEND` × the cold start's similarity, which keeps a young model from forgetting the
descriptions. A fifth of the annotations (fixed seed) is held out; the held-out top-1/top-3
accuracy of the blend trained on the rest, and of the cold start on the same rows, are reported,
and the version refitted on all rows is *deployed* only when the blend was at least as good.

Each version is stored in the queue's database (`api.server.intents.model_store`), so every
`serve` process on it suggests from the same one: the arrays (vocabulary, idf, weights, classes)
as .npz bytes, loaded with `allow_pickle=False` (a stored model can never run code), beside its
numbers. Serving needs numpy only.
"""

from __future__ import annotations

import io
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from api.models import IntentDef
from api.server.intents.coldstart import ColdStart
from api.server.intents.features import TermSpace, features

#: Below this many usable annotations a classifier is not trained (the cold start stays).
MIN_ROWS = 50
HOLDOUT_FRACTION = 0.2
SEED = 13
#: Weight of the cold start's cosine similarity beside the model's probabilities.
BLEND = 1.0


@dataclass(frozen=True, slots=True)
class TrainingRow:
    clip_id: str
    text: str
    intent: str


@dataclass(frozen=True, slots=True)
class TrainingReport:
    version: int
    rows: int
    gold_excluded: int
    held_out: int
    top1: float
    top3: float
    coldstart_top1: float
    coldstart_top3: float
    deployed: bool


@dataclass(frozen=True, slots=True)
class Trained:
    """A trained model and its numbers, before it is stored (the store gives it its version)."""

    model: IntentModel
    rows: int
    gold_excluded: int
    held_out: int
    top1: float
    top3: float
    coldstart_top1: float
    coldstart_top3: float

    @property
    def deployed(self) -> bool:
        """Served only when the blend did at least as well as the cold start on held-out rows."""
        return self.top3 >= self.coldstart_top3

    def report(self, version: int) -> TrainingReport:
        keys = ("top1", "top3", "coldstart_top1", "coldstart_top3")
        numbers = {k: getattr(self, k) for k in keys}
        return TrainingReport(
            version=version,
            rows=self.rows,
            gold_excluded=self.gold_excluded,
            held_out=self.held_out,
            deployed=self.deployed,
            **{k: round(v, 4) for k, v in numbers.items()},
        )


class IntentModel:
    """A trained version, ready to rank texts."""

    def __init__(
        self,
        space: TermSpace,
        weights: npt.NDArray[np.float64],
        bias: npt.NDArray[np.float64],
        classes: list[str],
    ) -> None:
        self.space, self.weights, self.bias, self.classes = space, weights, bias, classes

    def scores(self, text: str) -> npt.NDArray[np.float64]:
        z = self.weights @ self.space.vector(text) + self.bias
        e = np.exp(z - z.max())
        return np.asarray(e / e.sum())

    def rank(self, text: str, k: int = 3) -> list[str]:
        order = np.argsort(-self.scores(text), kind="stable")[:k]
        return [self.classes[i] for i in order]

    def to_bytes(self) -> bytes:
        vocab = sorted(self.space.vocabulary, key=self.space.vocabulary.__getitem__)
        out = io.BytesIO()
        np.savez_compressed(
            out,
            vocabulary=np.array(vocab, dtype=np.str_),
            idf=self.space.idf,
            weights=self.weights,
            bias=self.bias,
            classes=np.array(self.classes, dtype=np.str_),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> IntentModel:
        """ValueError (or OSError/KeyError) when `data` is not a model's arrays."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            vocab = {str(t): i for i, t in enumerate(z["vocabulary"])}
            return cls(
                TermSpace(vocab, z["idf"]),
                z["weights"],
                z["bias"],
                [str(c) for c in z["classes"]],
            )


class Blended:
    """A trained model's probabilities plus `BLEND` × the cold start's similarity."""

    def __init__(self, model: IntentModel, cold: ColdStart) -> None:
        self.model, self.cold = model, cold
        where = {c: i for i, c in enumerate(model.classes)}
        self._take = np.array([where.get(i, -1) for i in cold.ids])

    def scores(self, text: str) -> npt.NDArray[np.float64]:
        p = self.model.scores(text)
        learned = np.where(self._take >= 0, p[np.maximum(self._take, 0)], 0.0)
        return np.asarray(learned + BLEND * self.cold.scores(text))

    def rank(self, text: str, k: int = 3) -> list[str]:
        order = np.argsort(-self.scores(text), kind="stable")[:k]
        return [self.cold.ids[i] for i in order]


def seed_rows(intents: Sequence[IntentDef]) -> list[TrainingRow]:
    return [TrainingRow("", text, i.id) for i in intents for text in i.examples]


def fit(rows: Sequence[TrainingRow]) -> IntentModel:
    """TF-IDF + logistic regression on `rows` (needs scikit-learn)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=features, sublinear_tf=True)
    x = vectorizer.fit_transform([r.text for r in rows])
    model = LogisticRegression(C=20.0, max_iter=2000)
    model.fit(x, [r.intent for r in rows])
    vocab = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
    classes = [str(c) for c in model.classes_]
    weights, bias = np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_)
    if len(classes) == 2:  # scikit-learn keeps one row for two classes: spell both out
        weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0], bias[0]]) / 2
    return IntentModel(TermSpace(vocab, np.asarray(vectorizer.idf_)), weights, bias, classes)


def usable_rows(
    rows: Iterable[TrainingRow], intents: Collection[str], gold_clip_ids: Collection[str]
) -> tuple[list[TrainingRow], int]:
    """(the rows a model may learn from, how many were dropped for being on gold clips)."""
    kept: list[TrainingRow] = []
    gold = 0
    for row in rows:
        if row.clip_id in gold_clip_ids:
            gold += 1
        elif row.intent in intents and row.text.strip():
            kept.append(row)
    return kept, gold


def top_k_accuracy(ranker: Any, rows: Sequence[TrainingRow], k: int) -> float:
    if not rows:
        return float("nan")
    return sum(r.intent in ranker.rank(r.text, k) for r in rows) / len(rows)


def split(rows: Sequence[TrainingRow]) -> tuple[list[TrainingRow], list[TrainingRow]]:
    """(train, held out): a fixed-seed shuffle, so the same rows give the same numbers."""
    shuffled = list(rows)
    random.Random(SEED).shuffle(shuffled)
    n_held = max(1, round(len(shuffled) * HOLDOUT_FRACTION))
    return shuffled[n_held:], shuffled[:n_held]


def train(
    rows: Iterable[TrainingRow],
    intents: list[IntentDef],
    *,
    gold_clip_ids: Collection[str] = (),
) -> Trained:
    """Measure on held-out rows, then refit on all of them; ValueError when too few rows."""
    kept, gold = usable_rows(rows, {i.id for i in intents}, gold_clip_ids)
    if len(kept) < MIN_ROWS:
        raise ValueError(
            f"only {len(kept)} usable annotations (needs {MIN_ROWS}): suggestions stay on the "
            "cold start until more work is accepted"
        )
    train_rows, held = split(kept)
    cold = ColdStart(intents)
    trial = Blended(fit(train_rows + seed_rows(intents)), cold)
    return Trained(
        model=fit(kept + seed_rows(intents)),
        rows=len(kept),
        gold_excluded=gold,
        held_out=len(held),
        top1=top_k_accuracy(trial, held, 1),
        top3=top_k_accuracy(trial, held, 3),
        coldstart_top1=top_k_accuracy(cold, held, 1),
        coldstart_top3=top_k_accuracy(cold, held, 3),
    )
