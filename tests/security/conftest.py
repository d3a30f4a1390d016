"""Fixtures for the security sweep (module-scoped real servers: starting one per cell is slow)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import LiveServer, parametrize_backends, start_live_server, write_wavs
from tests.security.support import World


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc)  # the whole sweep runs on both backends


@pytest.fixture(scope="module")
def module_server(
    tmp_path_factory: pytest.TempPathFactory, new_db_url: Callable[[Path], str]
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("security")
    # The sweep's world submits several escalations as one annotator: no welfare break in it
    # (breaks have their own tests in tests/server/test_welfare.py).
    server = start_live_server(root, "--break-after-flagged", "0", db_url=new_db_url(root))
    server.ingest(write_wavs(root / "wavs", 200))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(module_server: LiveServer) -> World:
    return World.build(module_server)
