"""The conflicts list: submissions the server refused with 409, kept here rather than dropped.

A conflict is a clip someone else completed while this annotator's lease had expired (or a fence
gone stale). The work is never thrown away: this overlay lists it, and `e` writes it all as JSON
lines (0600, in the user data dir) for a supervisor to reconcile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

if TYPE_CHECKING:
    from annotator.store.db import LocalStore
    from annotator.store.models import ConflictItem

#: Words of the transcript shown per row; the export has all of it.
FIRST_WORDS = 8


def first_words(text: str, count: int = FIRST_WORDS) -> str:
    words = text.split()
    return " ".join(words[:count]) + (" …" if len(words) > count else "")


def conflict_row(item: ConflictItem) -> tuple[str, str, str, str]:
    """(clip id, when, reason, transcript's first words) as the table shows them."""
    when = datetime.fromtimestamp(item.at, UTC).astimezone().strftime("%Y-%m-%d %H:%M")
    return item.clip_id[:8], when, item.reason, first_words(item.annotation.transcript)


def export_path(now: datetime | None = None) -> Path:
    """A fresh file in the user data dir (private: it holds transcripts)."""
    from annotator.paths import data_dir, ensure_private_dir

    stamp = (now or datetime.now(UTC)).astimezone().strftime("%Y%m%d-%H%M%S")
    return ensure_private_dir(data_dir()) / f"conflicts-{stamp}.jsonl"


class ConflictsScreen(ModalScreen[None]):
    """The list, newest last; `e` exports it, Escape closes."""

    DEFAULT_CSS = """
    ConflictsScreen { align: center middle; }
    ConflictsScreen > Vertical {
        width: 96%; max-width: 120; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConflictsScreen #conflicts-title { text-style: bold; margin-bottom: 1; }
    ConflictsScreen DataTable { height: auto; max-height: 20; }
    ConflictsScreen .hint { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: it closes the moment it is typed, so the keys after it reach the form.
        Binding("escape,q", "close", "Close", show=False, priority=True),
        Binding("e", "export", "Export JSONL", show=False),
    ]

    def __init__(self, store: LocalStore) -> None:
        super().__init__()
        self.store = store
        self.items = store.conflicts()
        #: Where the last export went (tests and the notification read it).
        self.exported_to: Path | None = None

    def compose(self) -> ComposeResult:
        n = len(self.items)
        with Vertical():
            if n:
                title = (
                    f"{n} submission{'s' if n != 1 else ''} in conflict — the server refused "
                    "them (409): someone else completed the clip after your lease expired. "
                    "Kept here, never dropped."
                )
            else:
                title = "No conflicts: every submission the server judged was accepted."
            yield Label(title, id="conflicts-title")
            if n:
                table: DataTable[str] = DataTable(id="conflicts", cursor_type="row")
                table.add_columns("clip", "when", "reason", "transcript")
                for item in self.items:
                    table.add_row(*conflict_row(item), key=item.key)
                yield table
            yield Label(
                "e export as JSONL · Esc close" if n else "Esc close", classes="hint", markup=False
            )

    def on_mount(self) -> None:
        if self.items:
            self.query_one(DataTable).focus()

    def action_export(self) -> None:
        if not self.items:
            self.notify("No conflicts to export.", timeout=3)
            return
        path = export_path()
        try:
            count = self.store.export_conflicts_jsonl(path)
        except OSError as e:
            self.notify(f"Export failed: {e}", title="Conflicts", severity="error")
            return
        self.exported_to = path
        self.notify(
            f"{count} conflict{'s' if count != 1 else ''} written to {path}",
            title="Conflicts exported",
            timeout=10,
        )

    def action_close(self) -> None:
        self.dismiss(None)
