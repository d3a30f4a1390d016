"""The terms a text is scored on: words, word pairs and the 3–4 letter pieces of each word.

Letter pieces make a misheard word still count ("leads" shares most of "leeds"); word pairs
separate "turn on" from "turn off". One function, so training, serving and the cold start agree.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def features(text: str) -> list[str]:
    found = words(text)
    terms = [f"w:{w}" for w in found]
    terms += [f"b:{a}_{b}" for a, b in itertools.pairwise(found)]
    for w in found:
        padded = f" {w} "
        for n in (3, 4):
            terms += [f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1)]
    return terms


class TermSpace:
    """TF-IDF vectors over a fixed vocabulary: sublinear term frequency, times idf, unit length
    (exactly what scikit-learn's TfidfVectorizer(sublinear_tf=True) computes)."""

    def __init__(self, vocabulary: dict[str, int], idf: npt.NDArray[np.float64]) -> None:
        self.vocabulary = vocabulary
        self.idf = idf

    @classmethod
    def fit(cls, documents: list[str]) -> TermSpace:
        """The space of `documents` with scikit-learn's smoothed idf."""
        counts = [set(features(d)) for d in documents]
        vocab = {t: i for i, t in enumerate(sorted(set().union(*counts)))}
        df = np.zeros(len(vocab))
        for terms in counts:
            df[[vocab[t] for t in terms]] += 1
        idf = np.log((1 + len(documents)) / (1 + df)) + 1
        return cls(vocab, idf)

    def vector(self, text: str) -> npt.NDArray[np.float64]:
        v = np.zeros(len(self.vocabulary))
        for term, n in Counter(features(text)).items():
            i = self.vocabulary.get(term)
            if i is not None:
                v[i] = 1 + np.log(n)
        v *= self.idf
        norm = np.linalg.norm(v)
        return v / norm if norm > 0 else v
