"""`EscalationList`: the supervisors' live list of escalations, one row each.

A DataTable whose rows are `EscalationRow`s (display text only: the console shapes them). The
selection stays on the same escalation when rows arrive, leave or reorder (a new distress call
must never move what the supervisor is reading), and a row that is overdue is drawn in the error
colour with a `!` in front.

API:
    show(rows): replace the rows (same order as given), keeping the selection by key.
    tick(rows): update only the moving columns (age, countdown) of the rows shown.
    selected (str | None): the selected row's key (escalation id).
Messages: `EscalationList.Selected(key)` when the selection moves to another escalation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

__all__ = ["EscalationList", "EscalationRow"]

COLUMNS = (("", "mark"), ("severity", "severity"), ("age", "age"), ("service level", "sla"),
           ("state", "state"), ("raised by", "who"), ("flags", "flags"))  # fmt: skip


@dataclass(frozen=True)
class EscalationRow:
    key: str
    severity: str
    age: str
    sla: str
    state: str
    who: str
    flags: str
    overdue: bool
    #: The most severe (self-harm, distress): drawn bold.
    urgent: bool


class EscalationList(DataTable[Text]):
    DEFAULT_CSS = """
    EscalationList { height: 1fr; }
    """

    class Selected(Message):
        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._keys: list[str] = []
        self._selected: str | None = None

    def on_mount(self) -> None:
        for label, key in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected(self) -> str | None:
        return self._selected

    def _style(self, row: EscalationRow) -> str:
        if row.overdue:
            return "bold red"
        return "bold" if row.urgent else ""

    def _cells(self, row: EscalationRow) -> list[Text]:
        style = self._style(row)
        mark = "!" if row.overdue else ("●" if row.urgent else " ")
        values = (mark, row.severity, row.age, row.sla, row.state, row.who, row.flags)
        return [Text(v, style=style, no_wrap=True, overflow="ellipsis") for v in values]

    def show(self, rows: Sequence[EscalationRow]) -> None:
        keep = self._selected
        self.clear()
        self._keys = [r.key for r in rows]
        for row in rows:
            self.add_row(*self._cells(row), key=row.key)
        if keep in self._keys:
            self.move_cursor(row=self._keys.index(keep), animate=False)
        elif self._keys:
            self.move_cursor(row=0, animate=False)
        self._set_selected(self._keys[self.cursor_row] if self._keys else None)

    def tick(self, rows: Sequence[EscalationRow]) -> None:
        for row in rows:
            if row.key not in self._keys:
                continue
            cells = self._cells(row)
            for (_, column), cell in zip(COLUMNS, cells, strict=True):
                if column in {"mark", "age", "sla", "severity"}:
                    self.update_cell(row.key, column, cell)

    def _set_selected(self, key: str | None) -> None:
        if key != self._selected:
            self._selected = key
            self.post_message(self.Selected(key))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # The cursor's row now, not the event's: `show` moves the cursor back to the kept row
        # after clearing, and the clear's own highlight of row 0 arrives after that.
        event.stop()
        if self._keys and 0 <= self.cursor_row < len(self._keys):
            self._set_selected(self._keys[self.cursor_row])
