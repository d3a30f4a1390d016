"""Drafts in the SQLite queue: a schema-1 database gains the column in place, backfill sees only
open clips with neither hint nor draft, and a hint is never overwritten."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from api.server import sqlite_repo
from api.server.ingest import ingest_paths
from api.server.sqlite_repo import SqliteRepository
from tests.fixtures.server import wav_bytes


def _queue(tmp_path: Path, hints: dict[str, str]) -> tuple[SqliteRepository, dict[str, str]]:
    for n, name in enumerate(["a.wav", "b.wav", "c.wav"]):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(wav_bytes(n))
    repo = SqliteRepository(tmp_path / "q.db", tmp_path / "data")
    report = ingest_paths(
        [tmp_path / "in"], locale="en-US", asr_hints=hints, add_clip=repo.add_clip
    )
    return repo, {Path(name).name: cid for name, cid in report.ingested}


def test_backfill_targets_only_clips_without_hint_or_draft(tmp_path: Path) -> None:
    repo, ids = _queue(tmp_path, {"a.wav": "a human hint"})
    try:
        assert [t.source_name for t in repo.undrafted_clips()] == ["b.wav", "c.wav"]
        assert [t.clip_id for t in repo.undrafted_clips([ids["c.wav"]])] == [ids["c.wav"]]
        target = repo.undrafted_clips([ids["b.wav"]])[0]
        assert target.audio.path.read_bytes() == wav_bytes(1) and target.duration_s > 0
        assert not repo.set_draft(ids["a.wav"], "machine words", [("machine", 0.5)])
        assert repo.set_draft(ids["b.wav"], "machine words", [("machine", 0.5), ("words", 1.0)])
        assert [t.source_name for t in repo.undrafted_clips()] == ["c.wav"]
    finally:
        repo.close()


def test_a_schema_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    old_schema = re.sub(r"\n\s*asr_words TEXT,[^\n]*", "", sqlite_repo._SCHEMA)
    assert old_schema != sqlite_repo._SCHEMA
    conn.executescript(old_schema + "; PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO clips (clip_id, sha256, media_type, size_bytes, duration_s, sample_rate,"
        " channels, locale, needed, created_at) VALUES ('c1', ?, 'audio/wav', 1, 1.0, 16000, 1,"
        " 'en-US', 1, 0)",
        ("0" * 64,),
    )
    conn.commit()
    conn.close()
    repo = SqliteRepository(db, tmp_path / "data")
    try:
        assert [t.clip_id for t in repo.undrafted_clips()] == ["c1"]
        assert repo.set_draft("c1", "hello", [("hello", 0.9)])
    finally:
        repo.close()
    version = sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
    assert version == sqlite_repo.SCHEMA_VERSION == 2
