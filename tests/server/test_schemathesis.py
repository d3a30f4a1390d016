"""Property-based fuzzing of every route in /openapi.json against a real server: never a 5xx.

Schemathesis generates valid and invalid requests from the schema (positive and negative modes),
with a real admin token so requests get past authentication into the handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.fixtures.server import LiveServer, start_live_server, write_wavs


@pytest.fixture(scope="module")
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, new_db_url: Callable[[Path], str]
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz")
    server = start_live_server(root, db_url=new_db_url(root))
    server.ingest(write_wavs(root / "wavs", 20))
    yield server
    server.stop()


@pytest.fixture
def api_schema(fuzzed_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case, fuzzed_server: LiveServer) -> None:
    token = fuzzed_server.admin_token
    response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=10)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        # Every refusal is the contract's ErrorBody.
        assert set(response.json()) == {"reason", "message", "field"}, response.text
