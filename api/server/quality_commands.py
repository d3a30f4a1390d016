"""`annotator gold import`, `annotator report` and the final-annotation exports (issue 12), all
server-side (`--db` / ANNOTATOR_DB_URL), like `annotator export`.

`gold import FILE.jsonl`: one JSON object a line, `{"clip": NAME_OR_SHA256, "transcript": ...,
"intent": ..., "flags": [...]}` (`clip` is the ingested file's source name, or the sha256 of the
served bytes, as a lease shows it; `source_name` / `sha256` are accepted as the key's name too).
Each bad line is reported with its number and the fix; the good ones are imported; exit 1 when
any line was bad, 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.server.commands import UsageError, _note, _open_repo, _path, _run, _settings
from api.server.quality_rules import Estimate, Expected, Report, Thresholds
from api.text_safety import check_text, escaping_console

if TYPE_CHECKING:
    from api.server.quality_store import GoldAnswer, QualityStore
    from api.taxonomy import TaxonomyIndex

MAX_GOLD_LINE = 64 * 1024


@dataclass(frozen=True, slots=True)
class GoldProblem:
    line: int
    message: str


def _index(settings_taxonomy: Path | None) -> TaxonomyIndex:
    from api.taxonomy import TaxonomyIndex, load_taxonomy

    return TaxonomyIndex(load_taxonomy(settings_taxonomy))


def parse_gold_line(raw: str, index: TaxonomyIndex) -> tuple[str, Expected] | str:
    """(clip reference, expected answer), or what is wrong with the line."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        return f"not JSON ({e.msg} at column {e.colno})"
    if not isinstance(obj, dict):
        return "expected a JSON object"
    keys = [k for k in ("clip", "source_name", "sha256") if k in obj]
    if len(keys) != 1 or not isinstance(obj[keys[0]], str) or not obj[keys[0]]:
        return 'name the clip once: "clip": its source name or sha256'
    unknown = sorted(set(obj) - {keys[0], "transcript", "intent", "flags", "note"})
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}: give clip, transcript, intent, flags"
    transcript, intent, flags = obj.get("transcript"), obj.get("intent"), obj.get("flags", [])
    if not isinstance(transcript, str):
        return '"transcript" must be a string (empty for no speech)'
    if not isinstance(intent, str):
        return '"intent" must be a string'
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return '"flags" must be a list of flag ids'
    if problem := check_text(transcript):
        return f"transcript: {problem}"
    problems = [
        p
        for p in index.check_annotation(
            transcript=transcript, intent=intent, flags=flags, note=None
        )
        if p[0] != "note"  # an expected answer carries no supervisor note
    ]
    if problems:
        field, _, message = problems[0]
        return f"{field}: {message}"
    return obj[keys[0]], Expected(transcript, intent, frozenset(flags))


def read_gold(
    path: Path, index: TaxonomyIndex, store: QualityStore
) -> tuple[list[GoldAnswer], list[GoldProblem]]:
    from api.server.quality_store import GoldAnswer

    answers: list[GoldAnswer] = []
    problems: list[GoldProblem] = []
    seen: dict[str, int] = {}
    try:
        handle = path.open("r", encoding="utf-8", errors="strict", newline="")
    except OSError as e:
        raise UsageError(f"{path}: cannot read it ({e.strerror or e})") from None
    with handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                if len(raw) > MAX_GOLD_LINE:
                    problems.append(GoldProblem(number, f"longer than {MAX_GOLD_LINE} characters"))
                    continue
                parsed = parse_gold_line(raw, index)
                if isinstance(parsed, str):
                    problems.append(GoldProblem(number, parsed))
                    continue
                ref, expected = parsed
                clips = store.find_clips(ref)
                if not clips:
                    problems.append(
                        GoldProblem(number, f"no queued clip has source name or sha256 {ref!r}")
                    )
                    continue
                if len(clips) > 1:
                    problems.append(
                        GoldProblem(
                            number, f"{len(clips)} clips have source name {ref!r}: use its sha256"
                        )
                    )
                    continue
                if clips[0] in seen:
                    problems.append(GoldProblem(number, f"the same clip as line {seen[clips[0]]}"))
                    continue
                seen[clips[0]] = number
                answers.append(GoldAnswer(clips[0], expected))
        except UnicodeDecodeError:
            problems.append(GoldProblem(number + 1, "not UTF-8 text; the rest was not read"))
    return answers, problems


def gold_import(args: argparse.Namespace) -> int:
    return _run(_gold_import, args)


def _gold_import(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from api.server.quality_store import QualityStore
    from api.server.sql_repo import SqlRepository

    settings = _settings(args)
    path = Path(args.file).expanduser()
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    index = _index(settings.taxonomy_path)
    repo = _open_repo(settings, existing=True)
    try:
        assert isinstance(repo, SqlRepository)
        store = QualityStore(repo)
        answers, problems = read_gold(path, index, store)
        store.put_gold(answers, datetime.now(UTC))
    finally:
        repo.close()
    for p in problems:
        _note(f"{path}:{p.line}: {p.message}")
    _note(
        f"imported {len(answers)} gold clip{'s' if len(answers) != 1 else ''}"
        + (f"; {len(problems)} line(s) refused (above)" if problems else "")
    )
    return 1 if problems else 0


# ---------------------------------------------------------------- report


def report(args: argparse.Namespace) -> int:
    return _run(_report, args)


def _report(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter

    from api.server.quality_service import quality_report
    from api.server.quality_store import QualityStore
    from api.server.sql_repo import SqlRepository

    settings = _settings(args)
    index = _index(settings.taxonomy_path)
    repo = _open_repo(settings, existing=True)
    try:
        assert isinstance(repo, SqlRepository)
        result = quality_report(
            QualityStore(repo),
            sorted(index.flag_ids),
            Thresholds(max_pair_wer=settings.review_max_wer),
            time.time(),
        )
    finally:
        repo.close()
    if getattr(args, "format", "table") == "json":
        sys.stdout.buffer.write(TypeAdapter(Report).dump_json(result, indent=1) + b"\n")
        sys.stdout.flush()
    else:
        print_report(result)
    return 0


def _num(value: float | None, digits: int = 2, pct: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.{max(digits - 2, 0)}f} %" if pct else f"{value:.{digits}f}"


def _interval(est: Estimate) -> str:
    return "" if est.low is None or est.high is None else f"{est.low:.2f} – {est.high:.2f}"


def print_report(r: Report, file: Any = None) -> None:
    from rich.table import Table

    console = escaping_console(file=file)
    people = Table(title="People", title_justify="left")
    for col in (
        "annotator",
        "clips",
        "clips/hour",
        "median s/clip",
        "gold clips",
        "gold WER",
        "gold intent",
        "shared clips",
        "WER vs others",
        "intent agreement",
    ):
        people.add_column(col, justify="left" if col == "annotator" else "right")
    for p in r.people:
        people.add_row(
            p.annotator,
            str(p.clips),
            _num(p.clips_per_hour, 1),
            _num(p.median_seconds, 1),
            str(p.gold.clips),
            _num(p.gold.wer, 3),
            _num(p.gold.intent_accuracy, 3, pct=True),
            str(p.shared_clips),
            _num(p.wer_with_others, 3),
            _num(p.intent_agreement, 3, pct=True),
        )
    console.print(people)
    for title, rows in (("Locales", r.locales), ("Intents", r.intents)):
        t = Table(title=title, title_justify="left")
        for col in (title[:-1].lower(), "annotations", "clips", "clips K≥2", "disagreement"):
            t.add_column(col, justify="left" if col == title[:-1].lower() else "right")
        for v in rows:
            t.add_row(
                v.key,
                str(v.annotations),
                str(v.clips),
                str(v.multi_clips),
                _num(v.disagreement, 3, pct=True),
            )
        console.print(t)
    o = r.overall
    agree = Table(title=f"Agreement (clips with K ≥ 2: {o.clips})", title_justify="left")
    for col in ("figure", "value", "95 % interval", "units"):
        agree.add_column(col, justify="left" if col == "figure" else "right")
    agree.add_row("mean pair WER", _num(o.mean_pair_wer, 3), "", str(o.clips))
    for name, est in [("intent α", o.intent_alpha)] + [
        (f"flag {k} α", v) for k, v in sorted(o.flag_alpha.items())
    ]:
        interval = (
            f"{est.low:.2f} – {est.high:.2f}"
            if est.low is not None and est.high is not None
            else ""
        )
        agree.add_row(name, _num(est.value, 3), interval, str(est.units))
    console.print(agree)
    if r.pairs:
        pairs = Table(title="Pairs of people", title_justify="left")
        for col in ("pair", "shared clips", "mean pair WER", "intent α", "95 % interval",
                    "flag α (95 % interval)"):  # fmt: skip
            pairs.add_column(
                col, justify="left" if col in ("pair", "flag α (95 % interval)") else "right"
            )
        for pr in r.pairs:
            est = pr.agreement.intent_alpha
            flags = "; ".join(
                f"{name} {_num(e.value, 2)}" + (f" ({_interval(e)})" if _interval(e) else "")
                for name, e in sorted(pr.agreement.flag_alpha.items())
            )
            pairs.add_row(
                f"{pr.a} · {pr.b}",
                str(pr.agreement.clips),
                _num(pr.agreement.mean_pair_wer, 3),
                _num(est.value, 3),
                _interval(est),
                flags,
            )
        console.print(pairs)


# ---------------------------------------------------------------- exports of finals


def export_finals(args: argparse.Namespace, repo: Any) -> int:
    """`annotator export --format hf-audiofolder|label-studio|jsonl --final`: settles finished
    clips first (agreeing ones become final), then writes the finals."""
    from datetime import UTC, datetime

    from rich.progress import Progress

    from api.private_file import PrivateFileError, private_output
    from api.server.quality_export import (
        count_finals,
        export_hf_audiofolder,
        export_jsonl,
        export_label_studio,
    )
    from api.server.quality_store import QualityStore

    settings = _settings(args)
    store = QualityStore(repo)
    store.settle(datetime.now(UTC), Thresholds(max_pair_wer=settings.review_max_wer))
    fmt = args.format
    out = _path(getattr(args, "out", None))
    if fmt != "jsonl" and out is None:
        raise UsageError(f"--format {fmt} writes a directory: give --out DIR")
    total = count_finals(store)
    console = escaping_console(stderr=True)
    with Progress(console=console, transient=True, disable=total < 200) as bar:
        task = bar.add_task(f"exporting {total} final annotations", total=total)

        def step(n: int) -> None:
            bar.advance(task, n)

        try:
            if fmt == "hf-audiofolder":
                assert out is not None
                count = export_hf_audiofolder(store, out, step)
            elif fmt == "label-studio":
                assert out is not None
                count = export_label_studio(store, out, step)
            elif out is None:
                count = export_jsonl(store, sys.stdout.buffer, step)
                sys.stdout.flush()
            else:
                with private_output(out) as f:
                    count = export_jsonl(store, f, step)
        except PrivateFileError as e:
            raise UsageError(f"--out: {e}") from None
        except OSError as e:
            raise UsageError(f"--out {out}: {e.strerror or e}") from None
    skipped = "".join(f"; {n} without audio ({why})" for why, n in count.without_audio.items())
    _note(f"exported {count.written} final annotation{'s' if count.written != 1 else ''}{skipped}")
    return 0
