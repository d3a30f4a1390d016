"""Every relay test gets its own ANNOTATOR_HOME (nothing touches the real user's files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.relay.sshd import Sshd, start_sshd


@pytest.fixture(autouse=True)
def _annotator_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "annotator-home"
    home.mkdir()
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    for name in ("ANNOTATOR_RELAY", "ANNOTATOR_RELAY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH server on a free loopback port, for this test only."""
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.stop()
