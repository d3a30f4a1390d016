"""The quality commands run on both backends (see `tests.fixtures.server`)."""

import pytest

from tests.fixtures.server import parametrize_backends


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc)
