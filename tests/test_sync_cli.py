"""`annotator checkout`, `sync` and `purge` as an annotator runs them."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator import sync_cli
from annotator.cli import build_parser
from annotator.store import ClipCache, LocalStore, load_cache_key
from api.client import QueueClient
from tests.fixtures.server import LiveServer
from tests.store.sync_support import annotation_for, export

REPO = Path(__file__).resolve().parents[1]
HEADERS = (b"RIFF", b"OggS", b"fLaC", b"WAVE")


@pytest.fixture
def server(
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> LiveServer:
    paths = test_wavs(12)
    live_server.ingest(paths)
    live_server.wav_paths = paths  # type: ignore[attr-defined]
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNOTATOR_SERVER", live_server.url)
    monkeypatch.setenv("ANNOTATOR_TOKEN", live_server.annotator_token)
    return live_server


def run(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    handler = {"checkout": sync_cli.checkout, "sync": sync_cli.sync, "purge": sync_cli.purge}
    return handler[args.handler](args)


def test_checkout_caches_verified_encrypted_audio(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("checkout", "--count", "5") == 0
    assert "checked out 5 clips" in capsys.readouterr().out
    with LocalStore.open() as store:
        leases = store.live_leases()
    assert len(leases) == 5
    remaining = leases[0].expires_at - leases[0].expires_at.now(leases[0].expires_at.tzinfo)
    assert remaining.total_seconds() > 7 * 3600  # the long offline TTL
    key, _ = load_cache_key()
    cache = ClipCache(tmp_path / "home" / "data" / "cache", key)
    assert sorted(cache.entries()) == sorted(le.clip.clip_id for le in leases)
    originals = {
        hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes() for p in server.wav_paths
    }  # type: ignore[attr-defined]
    for le in leases:
        audio = cache.get(le.clip.clip_id)
        assert audio is not None and hashlib.sha256(audio).hexdigest() == le.clip.sha256
    # Scan the whole data dir (db, WAL, cache) for the clips' headers and PCM.
    pcm_samples = [o[100:164] for o in originals.values()] + [o[-64:] for o in originals.values()]
    for f in (tmp_path / "home").rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            for marker in HEADERS:
                assert marker not in blob, (f, marker)
            for pcm in pcm_samples:
                assert pcm not in blob, f


def test_checkout_when_the_queue_runs_dry(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("checkout", "--count", "20") == 0
    out = capsys.readouterr().out
    assert "checked out 12 clips" in out and "only 12 of the 20" in out


def test_checkout_without_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANNOTATOR_SERVER", raising=False)
    monkeypatch.delenv("ANNOTATOR_TOKEN", raising=False)
    assert run("checkout", "--count", "1") == 2
    assert "no server configured" in capsys.readouterr().err


def test_offline_session_then_sync(
    server: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run("checkout", "--count", "4") == 0
    server.stop()  # the train enters the tunnel
    with LocalStore.open() as store:
        for le in store.live_leases():
            store.submit(annotation_for(le), clip_id=le.clip.clip_id)
    assert run("sync") == 3
    assert "4 still waiting" in capsys.readouterr().out
    assert run("sync", "--status") == 0
    status = capsys.readouterr().out
    assert "pending" in status and "OfflineError" in status
    server.start()
    assert run("sync") == 0
    assert "sent 4: 4 accepted, 0 late" in capsys.readouterr().out
    assert run("sync") == 0
    assert "nothing to send" in capsys.readouterr().out
    records = export(server.url, server.admin_token)
    assert len(records) == 4
    key, _ = load_cache_key()
    assert (
        ClipCache(tmp_path / "home" / "data" / "cache", key).entries() == []
    )  # acknowledged → gone


def test_purge_refuses_unsynced_work_then_wipes(
    server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert run("checkout", "--count", "2") == 0
    with LocalStore.open() as store:
        le = store.live_leases()[0]
        store.submit(annotation_for(le), clip_id=le.clip.clip_id)
    assert run("purge", "--yes") == 1
    assert "refusing to purge" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("no\n"))
    assert run("purge", "--force") == 1
    assert "aborted" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))
    assert run("purge", "--force") == 0
    with LocalStore.open() as store:
        assert store.counts() == dict.fromkeys(
            ("leases", "drafts", "pending", "rejected", "conflicts", "history"), 0
        )
    assert list((tmp_path / "home" / "data" / "cache").iterdir()) == []
    assert export(server.url, server.admin_token) == []


def test_conflicts_export_from_the_command_line(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "conflicts.jsonl"
    assert run("sync", "--conflicts-jsonl", str(out)) == 0
    assert out.read_text() == "" and "wrote 0 conflicts" in capsys.readouterr().out


def test_damaged_database_is_a_message_not_a_traceback(server: LiveServer, tmp_path: Path) -> None:
    db = tmp_path / "home" / "data" / "local.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(os.urandom(5000))
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "annotator.cli", "sync", "--status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "moved to" in proc.stderr.replace(
        "\n", " "
    ) and "local.db.broken-" in proc.stderr.replace("\n", "")
    assert any(p.name.startswith("local.db.broken-") for p in db.parent.iterdir())


def test_sync_release_gives_back_unstarted_checkouts_and_keeps_drafts(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from annotator.store.models import Draft

    assert run("checkout", "--count", "3") == 0
    with LocalStore.open() as store:
        leases = store.live_leases()
        store.save_draft(Draft(leases[0].lease_id, leases[0].clip.clip_id, "half"))
        store.submit(annotation_for(leases[1]), clip_id=leases[1].clip.clip_id)
    capsys.readouterr()
    assert run("sync", "--release") == 0
    out = capsys.readouterr().out
    assert "sent 1" in out and "released 1 clip; kept 1 with a draft" in out
    with LocalStore.open() as store:
        assert [le.lease_id for le in store.live_leases()] == [leases[0].lease_id]
    # The released clip is back in the queue for anyone at once.
    with server.client(server.annotator_token) as c:
        free = c.post("/v1/leases", json={"count": 12}).json()["leases"]
    assert leases[2].clip.clip_id in {le["clip"]["clip_id"] for le in free}


def test_purge_gives_the_checked_out_clips_back(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The purge forgot the checked-out leases but left them on the server: the clips stayed
    held for the checkout's 8 h, where nobody else could annotate them."""
    assert run("checkout", "--count", "3") == 0
    assert run("purge", "--yes") == 0
    assert "released 3 clips" in capsys.readouterr().out
    with QueueClient(server.url, server.admin_token) as admin:
        queue = admin.queue_status()
    assert (queue.leased, queue.pending) == (0, 12)
