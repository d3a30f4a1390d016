"""The keymaps shipped with annotator (default, vim, pedal), as TOML files beside this module."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def keymap_dir() -> Path:
    """The directory holding the shipped `*.toml` keymaps.

    The package is always installed as plain files (a wheel, or the source tree), so the resource
    root is a real directory; error messages can then name the file the user can open.
    """
    return Path(str(resources.files(__name__)))


def shipped_keymap_names() -> list[str]:
    return sorted(p.stem for p in keymap_dir().glob("*.toml"))
