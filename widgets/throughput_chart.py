"""`ThroughputChart`: clips per hour over the shift, one Sparkline per person.

Display only. Each row: the person's name, a Sparkline of their clips per hour (oldest hour on
the left, aligned with the hours given), this hour's count and the total. Drawn by
`ShiftSparklines` (the same rows the quality view shows), with its own axis line.

API:
    show_people(hours, people): `hours` the buckets' labels (oldest first); `people` a list of
        (name, clips per hour aligned with `hours`, total). Names are escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence

from widgets.shift_sparklines import ShiftSparklines

__all__ = ["ThroughputChart"]


class ThroughputChart(ShiftSparklines):
    DEFAULT_CSS = """
    ThroughputChart .name { width: 20; }
    ThroughputChart .summary { width: 18; }
    """

    def show_people(
        self, hours: Sequence[str], people: Sequence[tuple[str, Sequence[int], int]]
    ) -> None:
        span = f"{hours[0]} → {hours[-1]}" if hours else "no hours"
        who = f"{len(people)} people" if people else "nobody has annotated in these hours"
        self.show(
            f"clips per hour, {span} UTC · {who}",
            [
                (
                    name,
                    [float(c) for c in counts],
                    f"{counts[-1] if counts else 0:>3}/h now · {total:>4}",
                )
                for name, counts, total in people
            ],
        )
