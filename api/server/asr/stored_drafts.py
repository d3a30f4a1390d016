"""Machine drafts made earlier, carried in an `--asr-hint-from` JSONL file with their words.

A line `{"file": ..., "asr_hint": "...", "asr_words": [["word", 0.93], ...]}` says the hint is a
recogniser's draft (the demo's bundled clips carry the real engine's, made by
scripts/make_demo_clips.py), so the clip is queued as a machine draft: marked so in the editor,
its low-confidence words underlined. The words must spell the hint (joined by single spaces),
as every draft's do. Lines without `asr_words` are plain hints, read by `ingest.load_asr_hints`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from api.server.sql_repo import SqlRepository

Words = list[tuple[str, float]]


def load_draft_words(path: Path) -> dict[str, Words]:
    """`file -> words` for the JSONL lines of `path` that carry `asr_words`; ValueError naming
    the line when one is malformed (the hint file's other checks are `load_asr_hints`')."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ASR hints: {e}") from None
    out: dict[str, Words] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.lstrip().startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # load_asr_hints names it
        if not isinstance(obj, dict) or "asr_words" not in obj:
            continue
        where = f"{path}:{lineno}"
        words = _words(obj["asr_words"], where)
        if " ".join(w for w, _ in words) != obj.get("asr_hint"):
            raise ValueError(f'{where}: "asr_words" must spell "asr_hint" (words joined by spaces)')
        out[Path(str(obj.get("file", "")).strip()).name] = words  # by base name, as hints are
    return out


def _words(raw: Any, where: str) -> Words:
    if not isinstance(raw, list):
        raise ValueError(f'{where}: "asr_words" must be a list of [word, confidence] pairs')
    words: Words = []
    for item in raw:
        ok = isinstance(item, list) and len(item) == 2
        word, conf = (item[0], item[1]) if ok else ("", None)
        if (
            not isinstance(word, str)
            or not word
            or any(c.isspace() for c in word)
            or isinstance(conf, bool)
            or not isinstance(conf, int | float)
            or not math.isfinite(conf)
            or not 0.0 <= conf <= 1.0
        ):
            raise ValueError(
                f'{where}: each of "asr_words" must be [word, confidence]: one word without '
                f"blanks and a number from 0 to 1, not {json.dumps(item)[:60]}"
            )
        words.append((word, float(conf)))
    return words


def attach_draft_words(
    repo: SqlRepository, clip_ids: Sequence[str], words_by_file: Mapping[str, Words]
) -> int:
    """Give the clips one ingest queued (`clip_ids`) the words of their file's stored draft,
    where the clip holds that draft's text as its hint (an empty draft: no hint); how many were
    given words."""
    wanted = set(clip_ids)
    with repo._read() as conn:
        rows = repo._x(
            conn, "SELECT clip_id, source_name, asr_hint FROM clips WHERE asr_words IS NULL"
        ).fetchall()
    given = 0
    for clip_id, name, hint in rows:
        words = words_by_file.get(name or "")
        # An empty draft (the engine heard nothing) is no hint: its clip holds none.
        if clip_id not in wanted or words is None or " ".join(w for w, _ in words) != (hint or ""):
            continue
        encoded = json.dumps([[w, c] for w, c in words], ensure_ascii=False)
        with repo._statement() as conn:
            cursor = repo._x(
                conn,
                "UPDATE clips SET asr_words = ? WHERE clip_id = ? AND asr_words IS NULL",
                (encoded, clip_id),
            )
        given += int(cursor.rowcount)
    return given
