"""`annotator` start-up: clear messages and exit status 2 for what the user must fix, and a lean
import path (no server modules on the client's cold start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.server import LiveServer

ANNOTATOR = [sys.executable, "-m", "annotator.cli"]


def run(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_")}
    clean.update(ANNOTATOR_HOME=str(home), **env)
    return subprocess.run(
        [*ANNOTATOR, *args], capture_output=True, text=True, env=clean, timeout=60, check=False
    )


def test_no_server_configured(tmp_path: Path) -> None:
    out = run([], tmp_path)
    assert out.returncode == 2
    assert "ANNOTATOR_SERVER" in out.stderr and "--server" in out.stderr
    assert "config.toml" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_keymap_stops_startup(tmp_path: Path) -> None:
    keymap = tmp_path / "mine.toml"
    keymap.write_text('[bindings]\n"player.toggle" = "f5"\n"player.teleport" = "f6"\n')
    out = run(["--server", "http://127.0.0.1:9", "--keymap", str(keymap)], tmp_path)
    assert out.returncode == 2
    assert "mine.toml" in out.stderr and "player.teleport" in out.stderr
    assert "Traceback" not in out.stderr


def test_plain_http_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    out = run(["--server", "http://queue.example.org"], tmp_path, ANNOTATOR_TOKEN="x" * 20)
    assert out.returncode == 2
    assert "--insecure" in out.stderr


def test_refused_token_names_the_setting(live_server: LiveServer, tmp_path: Path) -> None:
    out = run(["--server", live_server.url], tmp_path, ANNOTATOR_TOKEN="not-a-real-token-at-all")
    assert out.returncode == 2
    assert "ANNOTATOR_TOKEN" in out.stderr


@pytest.mark.parametrize("module", ["fastapi", "uvicorn", "api.server"])
def test_the_tui_import_path_has_no_server_modules(module: str) -> None:
    code = (
        "import sys\n"
        "import annotator.launch, annotator.app, annotator.prefetch, annotator.sync\n"
        "import annotator.store.db, annotator.audio.backends, annotator.config, annotator.keymap\n"
        f"print({module!r} in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
