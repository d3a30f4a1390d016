"""The help overlay: every key of the active keymap, grouped as the actions registry groups them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from annotator.actions import ANNOTATE, actions_for
from annotator.keymap import ResolvedKeymap


def key_rows(keymap: ResolvedKeymap, view: str = ANNOTATE) -> list[tuple[str, str, str]]:
    """(group, keys, description) for every action of `view`, in registry order."""
    rows: list[tuple[str, str, str]] = []
    for spec in actions_for(view):
        keys = ", ".join(k.strip() for k in keymap.keys_for(spec.id)) or "—"
        rows.append((spec.group, keys, spec.description))
    return rows


def _table(rows: Iterable[tuple[str, str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    group = None
    for row_group, keys, description in rows:
        if row_group != group:
            if group is not None:
                table.add_row("", "")
            table.add_row(Text(row_group, style="bold underline"), "")
            group = row_group
        table.add_row(Text(keys), Text(description))
    return table


class HelpScreen(ModalScreen[None]):
    """Two columns of groups so the whole keymap fits an 80×24 terminal with little scrolling."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96%; max-width: 120; height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; margin-bottom: 1; }
    HelpScreen #help-columns { layout: horizontal; height: auto; }
    /* A gap, so a wrapped description never runs into the next column's keys. */
    HelpScreen #help-columns > Static { width: 1fr; height: auto; padding-right: 3; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: it closes the moment it is typed, so the keys after it reach the form.
        Binding("escape,f1,q", "close", "Close", show=False, priority=True),
    ]

    def __init__(
        self,
        keymap: ResolvedKeymap,
        view: str = ANNOTATE,
        extra: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        super().__init__()
        self._keymap = keymap
        self._view = view
        #: Rows for keys a widget binds itself (the console's list moves with the arrows).
        self._extra = list(extra)

    def compose(self) -> ComposeResult:
        rows = [*key_rows(self._keymap, self._view), *self._extra]
        left, right = _split(rows)
        with VerticalScroll():
            yield Static(
                f"Keys — keymap [b]{escape(self._keymap.name)}[/b] · Esc closes · "
                "ctrl+p searches every command",
                id="help-title",
            )
            with VerticalScroll(id="help-columns"):
                yield Static(_table(left))
                yield Static(_table(right))

    def action_close(self) -> None:
        self.dismiss(None)


def _split(
    rows: Sequence[tuple[str, str, str]],
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    # Whole groups per column: Player/Annotation/Focus/App left, Flags/Tags right.
    left_groups = {"Player", "Annotation", "Focus", "App", "Escalations", "Console"}
    left = [r for r in rows if r[0] in left_groups]
    right = [r for r in rows if r[0] not in left_groups]
    return left, right
