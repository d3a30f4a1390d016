"""Cold start: importing the API models must not build the response models' validators (pydantic
builds each one on first use instead: `defer_build` on `api.models._Out`); the TUI imports every
model and uses a few before its first clip plays."""

from __future__ import annotations

import subprocess
import sys


def test_response_models_are_built_on_first_use_not_at_import() -> None:
    code = (
        "import api.models as m\n"
        "outs = [c for c in vars(m).values() if isinstance(c, type) and issubclass(c, m._Out)"
        " and c is not m._Out]\n"
        "assert outs, 'no response models found'\n"
        "built = [c.__name__ for c in outs if c.__pydantic_complete__]\n"
        "assert not built, built\n"
        "print(len(outs))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 5
