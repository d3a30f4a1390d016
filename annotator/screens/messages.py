"""Typed messages the background threads' news arrives in (posted thread-safely).

Each carries what happened, so the screen draws it instead of polling state back."""

from __future__ import annotations

from textual.message import Message

from annotator.prefetch import PrefetchStatus
from annotator.sync import SyncEvent
from annotator.workbench.connectivity import ConnectivityState


class ConnectivityChanged(Message):
    """The connectivity owner moved between online, reconnecting and offline."""

    def __init__(self, state: ConnectivityState) -> None:
        super().__init__()
        self.state = state


class SyncProgress(Message):
    """One sync round's outcome: sent, rejected, conflicts, what still waits."""

    def __init__(self, event: SyncEvent) -> None:
        super().__init__()
        self.event = event


class QueueChanged(Message):
    """Clips arrived, a lease was lost, an offline copy failed its check, or the state changed."""

    def __init__(self, status: PrefetchStatus) -> None:
        super().__init__()
        self.status = status


class CheckoutProgress(Message):
    """alt+o's checkout: `done` of `total` clips leased and cached."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total
