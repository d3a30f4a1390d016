"""One row per figure: its value, the floor measured beside it in the same run, the ratio between
the two and the target, printed as a table that reads in 100 columns and written to
bench/results.json.

Absolute figures move with the machine (another 2-core box gave a quarter of our throughput), so
a figure with a natural floor is judged against that floor: the same work done by the least code
that can do it (a bare ASGI app with the same durable writes, a bare `python -c "import …"`, the
audio library's own device call), measured in the same run, on the same loaded machine. The
target is then a ratio (`≤ 1.5×`, `≥ 0.6×`) or a margin over the floor (`≤ floor + 0.3 s`); a
figure with no natural floor (a memory ceiling, the issue's absolute throughput target) says so
in `no_floor`. Notes go under the table, numbered, not in a squeezed column.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

Direction = Literal["max", "min", "info"]
#: What the target is compared with: the value itself, value / floor, or value - floor.
Against = Literal["value", "ratio", "margin"]

TABLE_WIDTH = 100


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    #: The target; None for figures reported for scale. Read according to `against`.
    target: float | None = None
    #: "max": the compared number must be <= target; "min": >= target; "info": no target.
    direction: Direction = "info"
    detail: str = ""
    p99: float | None = None
    extra: dict[str, float | str] = field(default_factory=dict)
    #: The floor measured in the same run, in `unit`, and what it is.
    floor: float | None = None
    floor_what: str = ""
    against: Against = "value"
    #: Why this figure has no floor (required when it has neither floor nor floor_what).
    no_floor: str = ""
    #: Set when the figure could not be measured here ("not run: <reason>"); not a failure.
    not_run: str = ""

    def __post_init__(self) -> None:
        if self.against != "value" and not self.floor_what:
            raise ValueError(f"{self.name}: a target against the floor needs floor_what")
        if not self.floor_what and not self.no_floor:
            raise ValueError(f"{self.name}: give the floor it is measured beside, or no_floor")

    @property
    def ratio(self) -> float | None:
        """value / floor (the same units), None when either is missing."""
        if self.value is None or self.floor is None or self.floor == 0:
            return None
        if math.isnan(self.value) or math.isnan(self.floor):
            return None
        return self.value / self.floor

    @property
    def margin(self) -> float | None:
        if self.value is None or self.floor is None:
            return None
        return self.value - self.floor

    @property
    def compared(self) -> float | None:
        """The number the target applies to."""
        if self.against == "ratio":
            return self.ratio
        if self.against == "margin":
            return self.margin
        return self.p99 if (self.p99 is not None and self.name.endswith("p99")) else self.value

    @property
    def met(self) -> bool | None:
        if self.not_run or self.target is None or self.direction == "info":
            return None
        checked = self.compared
        if checked is None or math.isnan(checked):
            return False
        return checked <= self.target if self.direction == "max" else checked >= self.target


def fmt(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _with_unit(v: float | None, unit: str) -> str:
    text = fmt(v)
    return text if text == "—" or unit in ("", "×") else f"{text} {unit}"


def target_text(f: Figure) -> str:
    if f.target is None or f.direction == "info":
        return "info"
    sign = "≤ " if f.direction == "max" else "≥ "
    if f.against == "ratio":
        return f"{sign}{fmt(f.target)}×"
    if f.against == "margin":
        return f"{sign}floor+{_with_unit(f.target, f.unit)}"
    return f"{sign}{_with_unit(f.target, f.unit)}"


def ratio_text(f: Figure) -> str:
    if f.against == "margin":
        m = f.margin
        return "—" if m is None or math.isnan(m) else f"{'+' if m >= 0 else ''}{fmt(m)}"
    r = f.ratio
    return "—" if r is None else f"{r:.2f}×"


def row_cells(f: Figure) -> dict[str, str]:
    """The table cells of one figure (without markup)."""
    return {
        "value": "not run" if f.not_run else _with_unit(f.value, f.unit),
        "floor": _with_unit(f.floor, f.unit) if f.floor_what else "none",
        "ratio": ratio_text(f),
        "target": target_text(f),
        "met": {True: "yes", False: "NO", None: ""}[f.met],
    }


def _notes(f: Figure) -> str:
    parts = []
    if f.not_run:
        parts.append(f"not run: {f.not_run}")
    if f.floor_what:
        parts.append(f"floor: {f.floor_what}")
    elif f.no_floor:
        parts.append(f"no floor: {f.no_floor}")
    if f.detail:
        parts.append(f.detail)
    return "; ".join(parts)


def print_table(figures: list[Figure], console: Console | None = None) -> None:
    """The table (figure, value, floor, ratio, target, met) and, under it, one numbered note per
    figure: what the floor is, how it was measured, why a figure was not run."""
    console = console or Console(width=TABLE_WIDTH)
    table = Table(title="annotator benchmarks", show_lines=False, width=TABLE_WIDTH, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("figure", overflow="fold", ratio=1)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("floor", justify="right", no_wrap=True)
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("target", justify="right", no_wrap=True)
    table.add_column("met", no_wrap=True, min_width=3)
    for i, f in enumerate(figures, 1):
        cells = row_cells(f)
        met = {"yes": "[green]yes[/]", "NO": "[red]NO[/]"}.get(cells["met"], "")
        table.add_row(
            str(i), f.name, cells["value"], cells["floor"], cells["ratio"], cells["target"], met
        )
    console.print(table)
    lines = ["ratio: value ÷ floor (a +number: value − floor). Notes:"]
    for i, f in enumerate(figures, 1):
        lines.append(textwrap.fill(f"[{i}] {_notes(f)}", TABLE_WIDTH, subsequent_indent="    "))
    lines.append(f"load average (1, 5, 15 min) at the end: {loadavg()}, {os.cpu_count()} CPUs")
    for line in lines:  # wrapped here: 100 columns whatever the terminal's width
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _finite(v: object) -> object:
    """NaN (a percentile of nothing) as null: results.json stays strict JSON."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    return v


def write_json(figures: list[Figure], path: Path, meta: dict[str, object] | None = None) -> None:
    rows = []
    for f in figures:
        row = asdict(f)
        row.update(met=f.met, ratio=f.ratio, margin=f.margin, target_text=target_text(f))
        rows.append(_finite(row))
    doc = {
        "meta": {"cpus": os.cpu_count(), "loadavg_end": loadavg(), **(meta or {})},
        "figures": rows,
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def markdown(doc: dict[str, object]) -> str:
    """results.json as a Markdown table (for the README): figure, value, floor, ratio, target."""
    rows = doc.get("figures")
    assert isinstance(rows, list)
    out = ["| figure | value | floor | ratio | target | met |", "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        names = {f.name for f in fields(Figure)}
        f = Figure(**{k: v for k, v in row.items() if k in names})
        cells = row_cells(f)
        met = cells["met"] or ("not run" if f.not_run else "")
        out.append(
            f"| {f.name} | {cells['value']} | {cells['floor']} | {cells['ratio']} "
            f"| {cells['target']} | {met} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
