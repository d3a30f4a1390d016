"""Queues written straight into the tables (as `bench/quality_bench.py` does): many clips in a
blink, for the tests that need hundreds of them. The annotation triggers still fire."""

from __future__ import annotations

import json
import random
from typing import Any

WORDS = ["set", "an", "alarm", "for", "seven", "play", "some", "jazz", "what", "time", "is", "it"]
INTENTS = ["alarm_set", "alarm_query", "alarm_remove"]


def random_queue(
    clips: int, seed: int, flags: list[str], *, agree: bool = False
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(clip rows, annotation rows): `clips` clips of 2 or 3 annotations by six people, some
    disagreeing (none when `agree`)."""
    rng = random.Random(seed)
    clip_rows, annotation_rows = [], []
    for c in range(clips):
        clip = f"c{c:05d}"
        clip_rows.append((clip, f"{c:064x}", "audio/wav", 1, 1.0, 16000, 1, "en-US", 2, 2, 0.0))
        text = rng.choices(WORDS, k=rng.randint(1, 6))
        intent = rng.choice(INTENTS)
        for p in rng.sample(range(6), 2 if agree else rng.choice((2, 3))):
            mine = list(text)
            if not agree and rng.random() < 0.3:
                mine[rng.randrange(len(mine))] = rng.choice(WORDS)
            given = [] if agree else [f for f in flags if rng.random() < 0.15]
            said = intent if agree else rng.choice(INTENTS[: rng.choice((1, 3))])
            aid = f"{clip}-{p}"
            annotation_rows.append(
                (aid, clip, aid, f"p{p}", aid, "h", "{}", " ".join(mine), said,
                 json.dumps(given), None, rng.choice((None, rng.uniform(2, 20))), "accepted", 0,
                 "t", float(c))
            )  # fmt: skip
    return clip_rows, annotation_rows


def insert_queue(repo: Any, clip_rows: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> None:
    with repo._write() as conn:
        conn.cursor().executemany(
            repo._sql(
                "INSERT INTO clips (clip_id, sha256, media_type, size_bytes, duration_s,"
                " sample_rate, channels, locale, needed, completed, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            clip_rows,
        )
        conn.cursor().executemany(
            repo._sql(
                "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator,"
                " idempotency_key, request_hash, body, transcript, intent, flags, note,"
                " active_seconds, status, escalated, taxonomy_version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            rows,
        )
