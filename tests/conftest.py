"""Shared fixtures live in tests/fixtures/, one module per part, so parts never edit one file."""

import os

# Keep every test away from the real user's config and data; fixtures set a per-test home too.
os.environ.setdefault("ANNOTATOR_HOME", "/nonexistent-annotator-home-set-a-tmp-one")

pytest_plugins = ["tests.fixtures.server", "tests.fixtures.audio"]
