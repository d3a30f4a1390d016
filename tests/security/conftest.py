"""Fixtures for the security sweep (module-scoped real servers: starting one per cell is slow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.server import LiveServer, start_live_server, write_wavs
from tests.security.support import World


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("security")
    server = start_live_server(root)
    server.ingest(write_wavs(root / "wavs", 120))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(module_server: LiveServer) -> World:
    return World.build(module_server)
