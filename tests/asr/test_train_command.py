"""`annotator asr train` on a real queue: accepted annotations in, gold clips left out, a
deployed version the running server then suggests from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from api.client import QueueClient
from tests.asr.support import db_args, run, submit_jargon
from tests.fixtures.server import LiveServer, write_wavs


def test_train_learns_from_accepted_work_and_never_from_gold(
    make_live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    # One person annotates all 60 clips at once: above the default per-person lease cap.
    live_server = make_live_server("--max-live-leases", "100")
    ids = live_server.ingest(write_wavs(tmp_path / "in", 60))
    client = QueueClient(live_server.url, live_server.annotator_token)
    submit_jargon(client)
    gold = tmp_path / "gold.txt"
    gold.write_text("\n".join(ids[:10]) + "\n")

    done = run("asr", "train", *db_args(live_server), "--gold-ids", str(gold), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "intent model v1: 50 annotations (10 on gold clips left out)" in done.stderr
    assert "deployed" in done.stderr and "NOT" not in done.stderr
    assert "stored in the queue's database" in done.stderr
    assert not (live_server.data_dir / "intent-models").exists()  # no file on the training host
    status = run("asr", "status", *db_args(live_server), home=tmp_path)
    assert "intent suggestions: trained model v1 (50 annotations; held-out top-3" in status.stdout

    too_few = run("asr", "train", "--db", str(tmp_path / "empty.db"), home=tmp_path)
    assert too_few.returncode == 2 and "only 0 usable annotations" in too_few.stderr
