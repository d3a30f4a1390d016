"""`Suggester.suggest(draft) -> [intent, intent, intent]`: what the lease path calls.

The newest deployed classifier version in the queue's database (`model_store`) ranks the draft;
without one the cold start does. A draft with no words (the recogniser heard nothing) suggests
the taxonomy's empty-transcript intents (`no_speech`, …). A new version stored by
`annotator asr train` is picked up within `RELOAD_SECONDS` by every `serve` process on that
database, without a restart: each asks for the deployed version's number at most once per
`RELOAD_SECONDS`, on the first lease with a draft after that time.

The scorers (and numpy) are loaded on the first draft, not when the server starts: a queue with
no drafts pays nothing, and a restarted server answers as soon as before.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from api.models import Taxonomy

if TYPE_CHECKING:
    from api.server.intents.classifier import Blended, IntentModel
    from api.server.intents.coldstart import ColdStart

TOP_K = 3
#: How stale a process's model may be: a new version serves everywhere within this time.
RELOAD_SECONDS = 10.0

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    """Where deployed versions come from (`model_store.IntentModelStore`)."""

    def deployed_version(self) -> int: ...

    def load_deployed(self) -> tuple[int, IntentModel] | None: ...


class Suggester:
    def __init__(self, taxonomy: Taxonomy, source: ModelSource | None) -> None:
        self._taxonomy = taxonomy
        known = {i.id for i in taxonomy.intents}
        self._empty = [i for i in taxonomy.empty_transcript_intents if i in known]
        self._empty += [i for i in ("not_device_directed",) if i in known and i not in self._empty]
        self._source = source
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
        from api.server.intents.classifier import Blended
        from api.server.intents.coldstart import ColdStart

        with self._lock:
            if self._cold is None:
                self._cold = ColdStart(self._taxonomy.intents)
            if now - self._checked_at < RELOAD_SECONDS:
                return
            self._checked_at = now
            if self._source is None:
                return
            try:
                latest = self._source.deployed_version()
                if latest == self._seen_latest:
                    return
                found = self._source.load_deployed()
            except Exception as e:  # noqa: BLE001 - the database's many errors: keep serving
                # A lease must not fail for its suggestions: the model in hand (or the cold
                # start) serves, and the next period asks again.
                what = type(e).__name__
                log.warning("intent models unreadable (%s); kept v%d", what, self.version)
                return
            self._seen_latest = latest
            self._model = Blended(found[1], self._cold) if found else None
            self.version = found[0] if found else 0
            self._rank.cache_clear()
