"""The `annotator` command as an admin runs it, for the ASR tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixtures.server import LiveServer, run_annotator


def run(
    *args: str, home: Path, pythonpath: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(pythonpath)} if pythonpath is not None else None
    return run_annotator(*args, home=home, env=env, timeout=timeout)


def db_args(server: LiveServer) -> list[str]:
    return ["--db", server.db, "--data", str(server.data_dir)]
