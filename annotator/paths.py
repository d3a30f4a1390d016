"""Where the annotator keeps its files (platformdirs), overridable for tests and shared hosts.

ANNOTATOR_HOME, when set, puts config and data under one directory: tests, the demo and the crash
suite use it so that nothing touches the real user's files.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "annotator"


def _home() -> Path | None:
    home = os.environ.get("ANNOTATOR_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """Throwaway files (the demo's server); safe to delete whenever nothing runs."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def config_file() -> Path:
    return config_dir() / "config.toml"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only: it may hold recordings' metadata."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path
