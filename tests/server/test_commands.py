"""The server-side commands as an admin runs them: token create, ingest, serve's refusals."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from api.client import QueueClient
from tests.fixtures.server import LiveServer, run_annotator, wav_bytes


def run(
    *args: str, home: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_annotator(*args, home=home, env=env, timeout=timeout)


def test_token_create_prints_only_the_token_and_stores_its_hash(tmp_path: Path) -> None:
    done = run("token", "create", "Ada Lovelace", "--role", "supervisor", home=tmp_path)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n" and len(token) >= 40
    assert "shown once" in done.stderr
    db = tmp_path / "data" / "server" / "queue.db"  # the default under ANNOTATOR_HOME
    assert db.exists()
    assert token.encode() not in db.read_bytes()
    assert (db.stat().st_mode & 0o077) == 0


def test_token_create_refuses_a_blank_name(tmp_path: Path) -> None:
    done = run("token", "create", "  ", home=tmp_path)
    assert done.returncode == 2
    assert "NAME" in done.stderr and "Traceback" not in done.stderr


def test_ingest_command_with_asr_hints_and_a_bad_file(
    live_server: LiveServer, tmp_path: Path
) -> None:
    clips = tmp_path / "incoming"
    clips.mkdir()
    (clips / "turn_on.wav").write_bytes(wav_bytes(1))
    (clips / "weather.wav").write_bytes(wav_bytes(2))
    (clips / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    hints = tmp_path / "hints.jsonl"
    hints.write_text(json.dumps({"file": "turn_on.wav", "asr_hint": "turn on the lights"}) + "\n")
    done = run(
        "ingest",
        str(clips),
        "--db",
        live_server.db,
        "--data",
        str(live_server.data_dir),
        "--asr-hint-from",
        str(hints),
        "--locale",
        "en-GB",
        "--no-asr",  # this test is about hint files; ASR drafts have their own tests
        home=tmp_path,
    )
    assert done.returncode == 1  # something was skipped; the rest is queued
    assert "broken.wav" in done.stderr
    assert "2 clips ingested" in done.stderr

    ann = QueueClient(live_server.url, live_server.annotator_token)
    leases = ann.lease(count=5).leases
    assert len(leases) == 2
    assert {lease.clip.locale for lease in leases} == {"en-GB"}
    assert sorted(str(lease.clip.asr_hint) for lease in leases) == ["None", "turn on the lights"]

    again = run(
        "ingest",
        str(clips / "turn_on.wav"),
        "--db",
        live_server.db,
        "--data",
        str(live_server.data_dir),
        "--no-asr",
        home=tmp_path,
    )
    assert again.returncode == 0 and "1 duplicate" in again.stderr


def test_ingest_refuses_a_malformed_hint_file(tmp_path: Path) -> None:
    hints = tmp_path / "hints.jsonl"
    hints.write_text("{not json\n")
    done = run("ingest", str(tmp_path), "--asr-hint-from", str(hints), home=tmp_path)
    assert done.returncode == 2
    assert "--asr-hint-from" in done.stderr and "hints.jsonl:1" in done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--tls-cert", "/nonexistent.pem"), "--tls-key"),
        (("--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"), "no such file"),
        (("--annotations-per-clip", "0"), "--annotations-per-clip"),
        (("--taxonomy", "/nonexistent/taxonomy.json"), "taxonomy"),
    ],
)
def test_serve_refuses_bad_flags_clearly(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    done = run("serve", "--port", "0", *args, home=tmp_path, timeout=30)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port), home=tmp_path, timeout=30)
    assert done.returncode == 2
    assert "serving on" not in done.stdout
    assert "pick another --port" in done.stderr
    assert "Traceback" not in done.stderr
