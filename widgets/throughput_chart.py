"""`ThroughputChart`: clips per hour over the shift, one Sparkline per person.

Display only. Each row: the person's name, a Sparkline of their clips per hour (oldest hour on
the left, aligned with the hours given), this hour's count and the total.

API:
    show(hours, people): `hours` the buckets' labels (oldest first); `people` a list of
        (name, clips per hour aligned with `hours`, total). Names are escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from api.text_safety import for_terminal

__all__ = ["ThroughputChart"]


class ThroughputChart(Vertical):
    DEFAULT_CSS = """
    ThroughputChart { height: auto; }
    ThroughputChart > Horizontal { height: 1; }
    ThroughputChart .name { width: 20; }
    ThroughputChart Sparkline { width: 1fr; min-width: 12; }
    ThroughputChart .count { width: 18; text-align: right; }
    ThroughputChart #axis { height: 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="axis", markup=False)

    def show(self, hours: Sequence[str], people: Sequence[tuple[str, Sequence[int], int]]) -> None:
        for row in self.query(Horizontal):
            row.remove()
        span = f"{hours[0]} → {hours[-1]}" if hours else "no hours"
        who = f"{len(people)} people" if people else "nobody has annotated in these hours"
        self.query_one("#axis", Label).update(f"clips per hour, {span} UTC · {who}")
        rows = []
        for name, counts, total in people:
            last = counts[-1] if counts else 0
            rows.append(
                Horizontal(
                    Label(for_terminal(name), classes="name", markup=False),
                    Sparkline([float(c) for c in counts] or [0.0], summary_function=max),
                    Label(f"{last:>3}/h now · {total:>4}", classes="count", markup=False),
                )
            )
        if rows:
            self.mount_all(rows)
