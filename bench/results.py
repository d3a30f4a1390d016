"""One row per figure, printed as a table beside its target and written to bench/results.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

Direction = Literal["max", "min", "info"]


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    #: The target the issue sets; None for figures reported for scale (ratios, baselines).
    target: float | None = None
    #: "max": value must be <= target; "min": value must be >= target; "info": no target.
    direction: Direction = "info"
    detail: str = ""
    p99: float | None = None
    extra: dict[str, float | str] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None or self.direction == "info":
            return None
        if self.value is None:
            return False
        checked = self.p99 if (self.p99 is not None and self.name.endswith("p99")) else self.value
        return checked <= self.target if self.direction == "max" else checked >= self.target


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def print_table(figures: list[Figure], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="annotator benchmarks", show_lines=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("target", justify="right")
    table.add_column("met")
    table.add_column("detail", overflow="fold")
    for f in figures:
        target = (
            "" if f.target is None else ("≤ " if f.direction == "max" else "≥ ") + _fmt(f.target)
        )
        met = {True: "[green]yes[/]", False: "[red]NO[/]", None: ""}[f.met]
        table.add_row(f.name, _fmt(f.value), f.unit, target, met, f.detail)
    console.print(table)


def write_json(figures: list[Figure], path: Path) -> None:
    rows = []
    for f in figures:
        row = asdict(f)
        row["met"] = f.met
        rows.append(row)
    path.write_text(json.dumps(rows, indent=2) + "\n")
