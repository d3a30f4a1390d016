"""Drafts in the queue, on both backends: a queue made before drafts (schema 2) gains the column
in place, backfill sees only open clips with neither hint nor draft, and a hint is never
overwritten."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from api.server.ingest import ingest_paths
from api.server.migrations import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SQLITE_MIGRATIONS
from tests.fixtures.server import open_repo, wav_bytes

#: The last schema without drafts (migration 3 adds `clips.asr_words`).
BEFORE_DRAFTS = 2


def _queue(tmp_path: Path, db_url: str, hints: dict[str, str]) -> tuple[Any, dict[str, str]]:
    for n, name in enumerate(["a.wav", "b.wav", "c.wav"]):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(wav_bytes(n))
    repo = open_repo(db_url, tmp_path / "data")
    report = ingest_paths(
        [tmp_path / "in"], locale="en-US", asr_hints=hints, add_clip=repo.add_clip
    )
    return repo, {Path(name).name: cid for name, cid in report.ingested}


def test_backfill_targets_only_clips_without_hint_or_draft(
    tmp_path: Path, new_db_url: Callable[[Path], str]
) -> None:
    repo, ids = _queue(tmp_path, new_db_url(tmp_path / "q"), {"a.wav": "a human hint"})
    try:
        assert [t.source_name for t in repo.undrafted_clips()] == ["b.wav", "c.wav"]
        assert [t.clip_id for t in repo.undrafted_clips([ids["c.wav"]])] == [ids["c.wav"]]
        target = repo.undrafted_clips([ids["b.wav"]])[0]
        assert repo.read_audio(target.sha256) == wav_bytes(1) and target.duration_s > 0
        assert not repo.set_draft(ids["a.wav"], "machine words", [("machine", 0.5)])
        assert repo.set_draft(ids["b.wav"], "machine words", [("machine", 0.5), ("words", 1.0)])
        assert not repo.set_draft(ids["b.wav"], "other words", [("other", 0.5)])
        assert [t.source_name for t in repo.undrafted_clips()] == ["c.wav"]
        grants = {g.clip.clip_id: g.clip for g in repo.claim("ann", 3, 60, datetime.now(UTC))}
        assert grants[ids["a.wav"]].asr_hint == "a human hint"
        assert grants[ids["a.wav"]].asr_words is None  # a hint, not a machine draft
        assert grants[ids["b.wav"]].asr_hint == "machine words"
        assert grants[ids["b.wav"]].asr_words == (("machine", 0.5), ("words", 1.0))
    finally:
        repo.close()


_OLD_CLIP = (
    "INSERT INTO clips (clip_id, sha256, media_type, size_bytes, duration_s, sample_rate,"
    " channels, locale, needed, created_at) VALUES ('c1', '{sha}', 'audio/wav', 1, 1.0, 16000, 1,"
    " 'en-US', 1, 0)".format(sha="0" * 64)
)


def _make_queue_before_drafts(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            for script in SQLITE_MIGRATIONS[:BEFORE_DRAFTS]:
                conn.executescript(script)
            conn.execute(_OLD_CLIP)
            conn.execute(f"PRAGMA user_version = {BEFORE_DRAFTS}")
        return
    with psycopg.connect(db_url, autocommit=True) as pg:
        pg.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for version, script in enumerate(POSTGRES_MIGRATIONS[:BEFORE_DRAFTS], start=1):
            pg.execute(script)
            pg.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        pg.execute(_OLD_CLIP)


def test_a_queue_made_before_drafts_is_upgraded_in_place(
    tmp_path: Path, new_db_url: Callable[[Path], str]
) -> None:
    url = new_db_url(tmp_path / "old")
    _make_queue_before_drafts(url)
    repo = open_repo(url, tmp_path / "data")
    try:
        assert repo.applied_migrations == list(range(BEFORE_DRAFTS + 1, SCHEMA_VERSION + 1))
        assert repo.schema_version() == SCHEMA_VERSION
        assert [t.clip_id for t in repo.undrafted_clips()] == ["c1"]
        assert repo.set_draft("c1", "hello", [("hello", 0.9)])
        assert repo.undrafted_clips() == []
    finally:
        repo.close()
