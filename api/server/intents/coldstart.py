"""Suggestions before any annotation exists: a draft against each intent's own words.

Each intent's document is its id's words, its description and its example phrasings
(`api/taxonomy_default.json`); a draft's top intents are the documents nearest to it by TF-IDF
cosine similarity.
"""

from __future__ import annotations

import numpy as np

from api.models import IntentDef
from api.server.intents.features import TermSpace


def intent_document(intent: IntentDef) -> str:
    return " ".join([intent.id.replace("_", " "), intent.description, *intent.examples])


class ColdStart:
    def __init__(self, intents: list[IntentDef]) -> None:
        self.ids = [i.id for i in intents]
        docs = [intent_document(i) for i in intents]
        self.space = TermSpace.fit(docs)
        self.matrix = np.stack([self.space.vector(d) for d in docs])

    def scores(self, text: str) -> np.ndarray:
        """Cosine similarity of `text` to every intent, in `ids` order."""
        return self.matrix @ self.space.vector(text)

    def rank(self, text: str, k: int = 3) -> list[str]:
        s = self.scores(text)
        order = np.argsort(-s, kind="stable")[:k]
        return [self.ids[i] for i in order if s[i] > 0]
