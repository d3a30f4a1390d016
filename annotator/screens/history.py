"""The history list: reopen any submission still inside the server's amend window, not only the
last. ↑↓ + Enter (or a digit for the first nine) reopens it for amending; Esc keeps annotating.

The result is the chosen submission's history key (for `Workbench.undo(key)`), or None.
Transcripts are drawn as plain text (never markup) and cut to one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from annotator.store.models import HistoryItem
from api.text_safety import for_terminal
from widgets.inline_bindings import InlineBindings

__all__ = ["HistoryScreen", "history_row"]

_DIGITS = 9


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s ago"
    return f"{int(seconds // 60)} min ago"


def history_row(item: HistoryItem, number: int | None, now: float) -> Content:
    """One line: number, how long ago, the intent, the transcript (escaped), time left."""
    a = item.annotation
    left = ""
    if item.amend_until:
        remaining = datetime.fromisoformat(item.amend_until) - datetime.now(UTC)
        left = f" · {max(0, int(remaining.total_seconds() // 60))} min left"
    transcript = for_terminal(a.transcript) or "(empty)"
    head = f"{number} " if number is not None else "  "
    return Content.assemble(
        (head, "bold $text-warning"),
        (f"{_ago(max(0.0, now - item.submitted_at)):>10}  ", "$text-muted"),
        (a.intent, "bold"),
        "  ",
        transcript,
        (left, "$text-muted"),
    )


class _Rows(OptionList, InlineBindings):
    """The arrows move the highlight in typing order (see widgets/inline_bindings.py)."""


class HistoryScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%; padding: 1 2;
        border: thick $accent; background: $surface;
    }
    HistoryScreen OptionList { height: auto; max-height: 16; text-wrap: nowrap;
        text-overflow: ellipsis; }
    HistoryScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: they act the moment they are routed, so keys typed after them reach the form.
        Binding("escape", "dismiss_none", "Cancel", show=False, priority=True),
        Binding("enter", "choose", "Reopen", show=False, priority=True),
        *(
            Binding(str(i), f"pick({i - 1})", show=False, priority=True)
            for i in range(1, _DIGITS + 1)
        ),
    ]

    def __init__(self, items: Sequence[HistoryItem], now: float) -> None:
        super().__init__()
        self._items = list(items)
        self._now = now

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Reopen a submission[/b] — still inside the amend window")
            yield _Rows(
                *(
                    Option(history_row(item, n if n <= _DIGITS else None, self._now), id=item.key)
                    for n, item in enumerate(self._items, start=1)
                ),
                id="history-rows",
            )
            yield Label("1–9 or ↑↓ Enter reopens · Esc to keep annotating", classes="hint")

    def on_mount(self) -> None:
        rows = self.query_one(OptionList)
        rows.focus()
        rows.highlighted = 0 if self._items else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # a click; Enter is the `choose` binding
        self.dismiss(event.option.id)

    def action_choose(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None:
            self.dismiss(self._items[highlighted].key)

    def action_pick(self, index: int) -> None:
        if index < len(self._items):
            self.dismiss(self._items[index].key)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
