"""The annotator's local state: SQLite store (leases, drafts, outbox, history) and the audio cache.

Imports no Textual: the TUI, the sync engine and the CLI all sit on top of it.
"""

from annotator.store.cache import CacheKeyError, ClipCache, load_cache_key
from annotator.store.db import AlreadySubmitted, AmendError, LocalStore
from annotator.store.models import (
    ConflictItem,
    Draft,
    HistoryItem,
    OutboxItem,
    OutboxKind,
    OutboxState,
)
from annotator.store.recovery import StoreError

__all__ = [
    "AlreadySubmitted",
    "AmendError",
    "CacheKeyError",
    "ClipCache",
    "ConflictItem",
    "Draft",
    "HistoryItem",
    "LocalStore",
    "OutboxItem",
    "OutboxKind",
    "OutboxState",
    "StoreError",
    "load_cache_key",
]
