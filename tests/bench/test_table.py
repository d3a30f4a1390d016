"""The bench table's structure, not its timings: it reads in 100 columns, every figure row
carries a floor, a ratio and a target (or says why it has no floor), and every Figure the
suites build names its floor, so a new figure cannot silently drop it."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from bench.results import TABLE_WIDTH, Figure, markdown, print_table, row_cells, write_json

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _figures() -> list[Figure]:
    floor = "bare ASGI app (bench/floor_app.py), same 3 requests and durable writes, sqlite ×1"
    return [
        Figure(
            "sqlite ×1: idle cycle p50",
            3.1,
            "ms",
            1.5,
            "max",
            "200 cycles " * 20,  # a long note goes under the table, not into a column
            floor=2.4,
            floor_what=floor,
            against="ratio",
        ),
        Figure(
            "postgresql ×2: 100 annotators",
            1234.5,
            "/s",
            0.6,
            "min",
            floor=2000.0,
            floor_what=floor,
            against="ratio",
        ),
        Figure(
            "postgresql ×1: 100 annotators",
            None,
            "/s",
            0.6,
            "min",
            floor_what=floor,
            against="ratio",
            not_run="the installed `annotator serve --help` offers no postgresql:// for --db",
        ),
        Figure(
            "cold start to first clip audible",
            1.06,
            "s",
            0.3,
            "max",
            floor=0.81,
            floor_what='`python -c "import textual.app, httpx, numpy, soundfile, pydantic"`',
            against="margin",
        ),
        Figure(
            "best (sqlite ×1): p99 with a name long enough to need folding in its column",
            95.0,
            "ms",
            200.0,
            "max",
            floor=40.0,
            floor_what="that configuration's floor",
        ),
        Figure(
            "client RSS growth 100→1,000 clips",
            2.7,
            "MB",
            5.0,
            "max",
            no_floor="a difference between two readings of the same process",
        ),
    ]


def test_table_reads_in_100_columns() -> None:
    out = io.StringIO()
    print_table(_figures(), Console(file=out, width=200, color_system=None))
    lines = out.getvalue().splitlines()
    assert lines, "nothing printed"
    too_wide = [line for line in lines if cell_len(line) > TABLE_WIDTH]
    assert not too_wide, too_wide
    # Notes sit under the table, numbered, one per figure.
    for i in range(1, len(_figures()) + 1):
        assert any(line.startswith(f"[{i}] ") for line in lines), f"note [{i}] missing"
    assert any("not run: the installed" in line for line in lines)


def test_every_row_carries_floor_ratio_and_target() -> None:
    for f in _figures():
        cells = row_cells(f)
        assert all(cells[c] for c in ("value", "floor", "ratio", "target")), (f.name, cells)
        if f.floor_what and not f.not_run:
            assert cells["floor"] != "none" and cells["ratio"] != "—", (f.name, cells)
            assert cells["target"] != "info", (f.name, cells)


def test_ratio_and_margin_targets_are_judged_against_the_floor() -> None:
    idle, load, not_run, cold, best, growth = _figures()
    assert row_cells(idle)["ratio"] == "1.29×" and idle.met is True
    assert row_cells(load)["ratio"] == "0.62×" and load.met is True
    assert not_run.met is None and row_cells(not_run)["value"] == "not run"
    assert row_cells(cold)["ratio"] == "+0.25" and cold.met is True
    assert row_cells(cold)["target"] == "≤ floor+0.3 s"
    assert dataclasses.replace(cold, value=1.2).met is False
    assert best.met is True and row_cells(best)["ratio"] == "2.38×"
    assert row_cells(growth)["floor"] == "none" and growth.met is True


def test_a_figure_must_name_its_floor_or_say_why_it_has_none() -> None:
    with pytest.raises(ValueError, match="floor"):
        Figure("x", 1.0, "ms", 1.5, "max")
    with pytest.raises(ValueError, match="floor_what"):
        Figure("x", 1.0, "ms", 1.5, "max", floor=1.0, no_floor="?", against="ratio")


def test_every_figure_the_suites_build_names_its_floor() -> None:
    """Static: each `Figure(...)` call in bench/ passes floor_what= or no_floor= (the
    constructor also refuses one without, but only when a bench runs)."""
    calls = 0
    for path in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Figure":
                names = {k.arg for k in node.keywords}
                if None in names:  # Figure(**row): rebuilding a stored figure, not a new one
                    continue
                calls += 1
                assert names & {"floor_what", "no_floor"}, f"{path.name}:{node.lineno}"
    assert calls >= 20, "the suites build their figures elsewhere now: update this test"


def test_results_json_keeps_everything(tmp_path: Path) -> None:
    figs = _figures()
    figs.append(
        Figure("empty", float("nan"), "ms", 1.5, "max", floor=1.0, floor_what="f", against="ratio")
    )
    path = tmp_path / "results.json"
    write_json(figs, path, {"command": "python -m bench --quick"})
    doc = json.loads(path.read_text())  # strict JSON: NaN became null
    assert doc["meta"]["command"] == "python -m bench --quick" and "loadavg_end" in doc["meta"]
    rows = {r["name"]: r for r in doc["figures"]}
    idle = rows["sqlite ×1: idle cycle p50"]
    assert (idle["value"], idle["floor"], idle["target"]) == (3.1, 2.4, 1.5)
    assert idle["ratio"] == pytest.approx(3.1 / 2.4) and idle["met"] is True
    assert rows["empty"]["value"] is None and rows["empty"]["met"] is False


def test_results_json_as_markdown(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_json(_figures(), path)
    text = markdown(json.loads(path.read_text()))
    lines = text.splitlines()
    assert lines[0].startswith("| figure | value | floor | ratio | target |")
    assert len(lines) == 2 + len(_figures())
    assert "| sqlite ×1: idle cycle p50 | 3.1 ms | 2.4 ms | 1.29× | ≤ 1.5× | yes |" in lines
    assert any("| not run |" in line for line in lines)
