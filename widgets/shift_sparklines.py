"""`ShiftSparklines`: a few figures over the shift, one labelled Sparkline each, on a shared
hour axis (the supervisor console's quality view: throughput and gold accuracy).

Display only. API:
    show(axis, rows): `axis` the line above the charts (the hours they span); `rows` a list of
        (label, values oldest first, summary shown at the right). Labels are escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from api.text_safety import for_terminal

__all__ = ["ShiftSparklines"]


class ShiftSparklines(Vertical):
    DEFAULT_CSS = """
    ShiftSparklines { height: auto; }
    ShiftSparklines > Horizontal { height: 1; }
    ShiftSparklines .name { width: 16; }
    ShiftSparklines Sparkline { width: 1fr; min-width: 12; }
    ShiftSparklines .summary { width: 26; text-align: right; }
    ShiftSparklines #axis { height: 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="axis", markup=False)

    def show(self, axis: str, rows: Sequence[tuple[str, Sequence[float], str]]) -> None:
        for row in self.query(Horizontal):
            row.remove()
        self.query_one("#axis", Label).update(for_terminal(axis))
        self.mount_all(
            [
                Horizontal(
                    Label(for_terminal(name), classes="name", markup=False),
                    Sparkline([float(v) for v in values] or [0.0], summary_function=max),
                    Label(for_terminal(summary), classes="summary", markup=False),
                )
                for name, values, summary in rows
            ]
        )
