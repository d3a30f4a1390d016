"""Default locations of the server's database and audio store.

`api` must not import `annotator`, so this repeats the one rule of `annotator.paths` that matters
here: ANNOTATOR_HOME, when set, holds everything (tests and the demo use it); otherwise the
platformdirs user data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "annotator"


def server_dir() -> Path:
    home = os.environ.get("ANNOTATOR_HOME")
    base = Path(home) / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))
    return base / "server"


def default_db_path() -> Path:
    return server_dir() / "queue.db"


def default_data_dir() -> Path:
    return server_dir() / "data"
