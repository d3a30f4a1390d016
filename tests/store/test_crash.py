"""SIGKILL at random moments while typing and submitting (no server): nothing promised is lost."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from annotator.store import LocalStore
from tests.store.crash_support import Promises, check_promises, run_and_kill

KILLS = 20


@pytest.mark.slow
def test_sigkill_while_typing_and_submitting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    rng = random.Random()
    promises = Promises()
    for _ in range(KILLS):
        run_and_kill(home, promises, rng=rng)
        with LocalStore.open() as store:
            assert store.recovered_from is None
            check_promises(store, promises)
    assert promises.kills == KILLS
    assert promises.submitted, "the driver never got to submit: the test proves nothing"
    assert promises.resumed > 0, "no run was killed mid-draft: the test proves nothing"
