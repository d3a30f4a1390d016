"""The database commands on both backends: `db migrate`, `token revoke` seen by every server
process within a second, `--db`/ANNOTATOR_DB_URL, and `db copy` from SQLite to PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.client import QueueClient
from api.server.intents.classifier import IntentModel, train
from api.server.intents.model_store import IntentModelStore
from api.server.migrations import SCHEMA_VERSION, SQLITE_MIGRATIONS
from tests.fixtures.server import LiveServer, open_repo, start_live_server
from tests.server.helpers import annotation, key
from tests.server.test_commands import run

REVOKE_DEADLINE_S = 1.0
#: The first request once the database is back: a fresh connection, not a wait for the pool's
#: next backed-off reconnection attempt (seconds apart by then).
RECOVERY_S = 3.0


def test_db_migrate_brings_an_old_sqlite_queue_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # a queue as the first release made it (schema 1)
        conn.executescript(SQLITE_MIGRATIONS[0])
        conn.execute(
            "INSERT INTO tokens (token_sha256, name, role, created_at)"
            " VALUES ('x', 'a', 'admin', 0)"
        )
        conn.execute("PRAGMA user_version = 1")
    done = run("db", "migrate", "--db", str(db), home=tmp_path)
    assert done.returncode == 0, done.stderr
    later = ", ".join(str(v) for v in range(2, SCHEMA_VERSION + 1))
    assert f"applied {later}; schema version {SCHEMA_VERSION}" in done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT name, revoked_at FROM tokens").fetchall() == [("a", None)]
    again = run("db", "migrate", "--db", f"sqlite:///{db}", home=tmp_path)
    assert again.returncode == 0 and "already current" in again.stderr


def test_db_migrate_on_a_new_database(tmp_path: Path, new_db_url) -> None:
    url = new_db_url(tmp_path / "q")
    done = run("db", "migrate", "--db", url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"applied {', '.join(str(v) for v in range(1, SCHEMA_VERSION + 1))}" in done.stderr
    assert "postgresql://" not in done.stderr or "@" in done.stderr  # named, never a password


def test_the_database_url_can_come_from_the_environment(tmp_path: Path, new_db_url) -> None:
    url = new_db_url(tmp_path / "q")
    env_home = tmp_path / "home"
    done = run("token", "create", "Ada", home=env_home, env={"ANNOTATOR_DB_URL": url})
    assert done.returncode == 0, done.stderr
    repo = open_repo(url, env_home / "data")
    try:
        assert repo.principal_for_token(done.stdout.strip()).name == "Ada"
    finally:
        repo.close()
    flag = run(
        "token",
        "revoke",
        "Ada",
        "--db",
        url,
        home=env_home,
        env={"ANNOTATOR_DB_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert flag.returncode == 0, flag.stderr  # --db wins over the environment


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    url = "postgresql://nobody:hunter2@127.0.0.1:1/none"
    done = run("token", "create", "Ada", "--db", url, home=tmp_path)
    assert done.returncode == 2
    assert "cannot open the queue database" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
    bad = run("export", "--db", "mysql://x/y", home=tmp_path)
    assert bad.returncode == 2 and "unknown database scheme" in bad.stderr


def _status(server: LiveServer, token: str) -> int:
    r = httpx.get(f"{server.url}/v1/me/stats", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_a_revoked_token_stops_working_on_every_process_within_a_second(
    tmp_path: Path, new_db_url
) -> None:
    url = new_db_url(tmp_path / "db")
    first = start_live_server(tmp_path / "a", db_url=url)
    second = start_live_server(tmp_path / "b", db_url=url)
    try:
        token = first.new_token("Grace")
        keep = first.new_token("Linus")
        assert _status(first, token) == _status(second, token) == 200  # cached on both now
        done = run("token", "revoke", "Grace", "--db", url, home=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "revoked 1 token" in done.stderr
        revoked_at = time.monotonic()
        pending = {first.url: first, second.url: second}
        while pending and time.monotonic() - revoked_at < REVOKE_DEADLINE_S + 2:
            for key, server in list(pending.items()):
                if _status(server, token) == 401:
                    pending.pop(key)
                    assert time.monotonic() - revoked_at <= REVOKE_DEADLINE_S
            time.sleep(0.02)
        assert not pending, "a server still accepts the revoked token"
        assert _status(first, keep) == _status(second, keep) == 200  # others unaffected
        again = run("token", "revoke", "Grace", "--db", url, home=tmp_path)
        assert again.returncode == 1 and "nothing revoked" in again.stderr
    finally:
        first.stop()
        second.stop()


@pytest.mark.one_backend  # from SQLite, to PostgreSQL: both backends by construction
def test_db_copy_moves_a_live_sqlite_queue_to_postgres(
    tmp_path: Path, make_live_server, pg_cluster, test_wavs
) -> None:
    """Everything survives the move: tokens, clips and their audio, annotations, a live lease
    (its fence still accepted), machine drafts with their word confidences, K, and new clips
    queue after the copied ones."""
    old: LiveServer = make_live_server("--annotations-per-clip", "2")
    ids = old.ingest(test_wavs(4))
    ann = QueueClient(old.url, old.annotator_token)
    done_lease, live_lease = ann.lease(count=2).leases
    receipt = ann.submit(
        annotation(done_lease, flags=["distress"], note="crying"), idempotency_key=key()
    )
    escalation = "a_" + receipt.annotation_id
    QueueClient(old.url, old.supervisor_token).acknowledge(escalation, "listening")
    repo = open_repo(old.db, old.data_dir)
    try:
        assert repo.set_draft(ids[3], "machine words", [("machine", 0.25), ("words", 0.75)])
        model = _store_intent_model(repo)
    finally:
        repo.close()
    old.stop()

    url = pg_cluster.new_database()
    copied = run(
        "db", "copy", "--from", old.db, "--to", url, "--data", str(old.data_dir), home=tmp_path
    )
    assert copied.returncode == 0, copied.stderr
    assert "4 clips" in copied.stderr and "1 annotations" in copied.stderr
    assert "4 audio" in copied.stderr

    again = run(
        "db", "copy", "--from", old.db, "--to", url, "--data", str(old.data_dir), home=tmp_path
    )
    assert again.returncode == 2 and "already holds a queue" in again.stderr

    new = LiveServer(root=tmp_path / "pg", db_url=url)
    new.root.mkdir()
    new.start()
    try:
        ann = QueueClient(new.url, old.annotator_token)  # the same token works
        assert ann.audio(live_lease.lease_id)[:4] == b"RIFF"
        drafted = {g.clip.clip_id: g.clip for g in ann.lease(count=2).leases}[ids[3]]
        assert drafted.asr_hint == "machine words"
        assert [(w.word, w.confidence) for w in drafted.asr_words or []] == [
            ("machine", 0.25),
            ("words", 0.75),
        ]
        # The escalation and its audit trail came along.
        moved = QueueClient(new.url, old.supervisor_token).escalation(escalation)
        assert moved.escalation.state == "acknowledged"
        assert [(a.action, a.note) for a in moved.audit] == [("ack", "listening")]
        second = ann.submit(annotation(live_lease), idempotency_key=key())
        assert second.status.value == "accepted"  # the copied lease and fence still hold
        with new.client(old.admin_token) as admin:
            lines = admin.get("/v1/export").text.splitlines()
        assert len(lines) == 2 and receipt.annotation_id in "".join(lines)
        new.ingest(test_wavs(1, start=100))
        repo = open_repo(url, new.data_dir)
        try:
            with repo._read() as conn:
                rows = conn.execute("SELECT seq, needed FROM clips ORDER BY seq").fetchall()
            found = IntentModelStore(repo).load_deployed()  # the model's versions came along
        finally:
            repo.close()
        assert [n for _, n in rows] == [2] * 5  # K came along and applies to new clips
        assert rows[-1][0] > max(seq for seq, _ in rows[:-1])
        assert found is not None and found[0] == 1 and found[1].classes == model.classes
    finally:
        new.stop()

    back = tmp_path / "back"  # and the other way, PostgreSQL to a new SQLite queue
    done = run(
        "db",
        "copy",
        "--from",
        url,
        "--to",
        f"sqlite:///{back / 'queue.db'}",
        "--data",
        str(back / "data"),
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "5 clips" in done.stderr and "2 annotations" in done.stderr
    returned = LiveServer(root=back)
    returned.start()
    try:
        with returned.client(old.admin_token) as admin:
            assert len(admin.get("/v1/export").text.splitlines()) == 2
    finally:
        returned.stop()


@pytest.mark.one_backend  # PostgreSQL's own outage; SQLite has no server to lose
def test_a_database_outage_is_a_503_and_the_server_recovers(
    tmp_path: Path, pg_cluster, test_wavs
) -> None:
    server = start_live_server(tmp_path / "s", db_url=pg_cluster.new_database())
    try:
        server.ingest(test_wavs(2))
        with server.client(server.annotator_token) as http:
            assert http.post("/v1/leases", json={"count": 1}).status_code == 200
            pg_cluster.stop_server(mode="immediate")
            try:  # a long outage: the pool's reconnection backoff would have grown past 8 s
                down = [http.post("/v1/leases", json={"count": 1}, timeout=30) for _ in range(2)]
            finally:
                pg_cluster.start()
            assert [r.status_code for r in down] == [503, 503], down[0].text
            assert down[0].json()["reason"] == "database_unavailable"
            # Pooled connections died with the database; a fresh one is made at once.
            began = time.monotonic()
            up = http.post("/v1/leases", json={"count": 1}, timeout=30)
            assert up.status_code == 200 and len(up.json()["leases"]) == 1
            assert time.monotonic() - began < RECOVERY_S  # not a backed-off reconnection
    finally:
        server.stop()


def test_export_from_a_mistyped_db_path_says_so_and_creates_nothing(tmp_path: Path) -> None:
    """`annotator export --db /srv/annotator/queue.bd` made that file (and its directories) as
    a new, empty queue and said "exported 0 annotations": nothing told the admin the path was
    wrong."""
    typo = tmp_path / "srv" / "queue.bd"
    for final in ([], ["--final"]):
        done = run("export", "--db", str(typo), *final, "--out", str(tmp_path / "x"), home=tmp_path)
        assert done.returncode == 2, done.stderr
        assert f"no queue database at {typo}" in done.stderr and "--db" in done.stderr
        assert not typo.parent.exists() and not (tmp_path / "x").exists()


def _store_intent_model(repo: Any) -> IntentModel:
    from tests.asr.test_suggestions import TAXONOMY, jargon_rows

    trained = train(jargon_rows(60, seed=1), TAXONOMY.intents)
    IntentModelStore(repo).put(trained, datetime.now(UTC))
    return trained.model


@pytest.mark.parametrize(
    "command",
    [["report"], ["token", "list"], ["token", "revoke", "ann"], ["gold", "import", "GOLD"]],
    ids=["report", "token-list", "token-revoke", "gold-import"],
)
def test_reading_commands_refuse_a_mistyped_db_path(tmp_path: Path, command: list[str]) -> None:
    """Like export: `report`, `token list`/`revoke` and `gold import` against a path with no
    database made a new empty queue there and answered as if it were the real one."""
    typo = tmp_path / "srv" / "queue.bd"
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"sha256": "' + "0" * 64 + '", "transcript": "hi", "intent": "greet"}\n')
    args = [str(gold) if a == "GOLD" else a for a in command]
    done = run(*args, "--db", str(typo), home=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"no queue database at {typo}" in done.stderr and "--db" in done.stderr
    assert not typo.parent.exists()
