"""`Suggester.suggest(draft) -> [intent, intent, intent]`: what the lease path calls.

The newest deployed classifier version in `<data_dir>/intent-models/` ranks the draft; without
one the cold start does. A draft with no words (the recogniser heard nothing) suggests the
taxonomy's empty-transcript intents (`no_speech`, …). A new version written by
`annotator asr train` is picked up within `RELOAD_SECONDS` without restarting the server.

The scorers (and numpy) are loaded on the first draft, not when the server starts: a queue with
no drafts pays nothing, and a restarted server answers as soon as before.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from api.models import Taxonomy

if TYPE_CHECKING:
    from api.server.intents.classifier import Blended
    from api.server.intents.coldstart import ColdStart

TOP_K = 3
RELOAD_SECONDS = 30.0
MODELS_DIR = "intent-models"


def models_dir(data_dir: Path) -> Path:
    return data_dir / MODELS_DIR


class Suggester:
    def __init__(self, taxonomy: Taxonomy, directory: Path | None) -> None:
        self._taxonomy = taxonomy
        known = {i.id for i in taxonomy.intents}
        self._empty = [i for i in taxonomy.empty_transcript_intents if i in known]
        self._empty += [i for i in ("not_device_directed",) if i in known and i not in self._empty]
        self._directory = directory
        self._lock = threading.Lock()
        self._cold: ColdStart | None = None
        self._model: Blended | None = None
        self.version = 0
        self._checked_at = float("-inf")
        self._seen_latest = -1
        self._rank = lru_cache(maxsize=4096)(self._rank_uncached)

    def suggest(self, draft: str | None) -> list[str]:
        """The top intents for a clip whose draft is `draft` (None: no draft, no suggestions)."""
        if draft is None:
            return []
        text = draft.strip()
        if not text:
            return self._empty[:TOP_K]
        self._load()
        return list(self._rank(text))

    def _rank_uncached(self, text: str) -> tuple[str, ...]:
        ranker = self._model if self._model is not None else self._cold
        assert ranker is not None  # _load ran
        return tuple(ranker.rank(text, TOP_K))

    def _load(self) -> None:
        """Build the cold start once; look for a newer deployed version every RELOAD_SECONDS."""
        now = time.monotonic()
        if self._cold is not None and now - self._checked_at < RELOAD_SECONDS:
            return
        from api.server.intents.classifier import Blended, deployed_model, latest_version
        from api.server.intents.coldstart import ColdStart

        with self._lock:
            if self._cold is None:
                self._cold = ColdStart(self._taxonomy.intents)
            if now - self._checked_at < RELOAD_SECONDS:
                return
            self._checked_at = now
            if self._directory is None:
                return
            latest = latest_version(self._directory)
            if latest == self._seen_latest:
                return
            self._seen_latest = latest
            found = deployed_model(self._directory)
            self._model = Blended(found[1], self._cold) if found else None
            self.version = found[0] if found else 0
            self._rank.cache_clear()
