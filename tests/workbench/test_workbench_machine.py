"""Random sittings over the workbench and a real `annotator serve` (hypothesis, stateful).

Rules: put a clip on the bench, type (a draft), submit, skip, undo+amend, checkout, quit and
restart, kill and restart (nothing released), server down and up. After a final sync with the
server up: every submission on the server exactly once with its latest text, no prefetched lease
without a draft kept past a quit, and the connectivity owner agreeing with the server's state.

CI-sized by default; ANNOTATOR_MACHINE_EXAMPLES raises the example count (`make chaos` may).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from annotator.services import Services
from annotator.store.models import LeaseOrigin
from annotator.workbench.connectivity import Link
from annotator.workbench.outcomes import Amended, Reopened, Shown, Submitted
from api.models import ReleaseReason
from tests.fixtures.server import LiveServer
from tests.tui.helpers import export
from tests.workbench.support import form, services_for, wait_for

EXAMPLES = int(os.environ.get("ANNOTATOR_MACHINE_EXAMPLES", "4"))
STEPS = 16
CLIPS_PER_EXAMPLE = 14
words = st.text(alphabet="abcdefghij ", min_size=1, max_size=12).map(
    lambda s: " ".join(s.split()) or "x"
)


class Sitting(RuleBasedStateMachine):
    server: LiveServer
    home_root: Path
    examples = 0

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        cls.examples += 1
        self.home = cls.home_root / f"home{cls.examples}"
        os.environ["ANNOTATOR_HOME"] = str(self.home)
        self.token = cls.server.new_token(f"machine{cls.examples}")
        self.up = True
        self.expected: dict[str, str] = {}  # clip id -> the text the server must end with
        self.services: Services | None = self._open()

    # -- plumbing

    def _open(self) -> Services:
        services = services_for(self.server, token=self.token)
        services.start()
        return services

    @property
    def s(self) -> Services:
        assert self.services is not None
        return self.services

    def _bench_clip(self) -> None:
        bench = self.s.workbench
        if bench.current is None and bench.amending is None:
            # The queue may be empty or unreachable: the rules cope with no clip on the bench.
            with contextlib.suppress(AssertionError):
                wait_for(lambda: isinstance(bench.next(), Shown), timeout=3, step=0.05)

    # -- rules

    @rule()
    def take_a_clip(self) -> None:
        self._bench_clip()

    @rule(text=words)
    def type_a_draft(self, text: str) -> None:
        if self.s.workbench.current is not None:
            self.s.workbench.save_draft(form(text))

    @rule(text=words)
    def submit(self, text: str) -> None:
        self._bench_clip()
        bench = self.s.workbench
        if bench.current is None or bench.amending is not None:
            return
        outcome = bench.submit(form(text))
        assert isinstance(outcome, Submitted), outcome
        assert outcome.clip_id not in self.expected
        self.expected[outcome.clip_id] = text

    @rule()
    def skip(self) -> None:
        bench = self.s.workbench
        if bench.current is not None and bench.amending is None:
            bench.skip(ReleaseReason.SKIPPED)

    @rule(text=words)
    def undo_and_amend(self, text: str) -> None:
        bench = self.s.workbench
        reopened = bench.undo()
        if not isinstance(reopened, Reopened):
            return
        outcome = bench.submit(form(text))
        assert isinstance(outcome, Amended), outcome
        self.expected[reopened.item.clip_id] = text
        bench.end_amendment()

    @precondition(lambda self: self.up)
    @rule(count=st.integers(1, 3))
    def checkout(self, count: int) -> None:
        result = self.s.workbench.checkout(count)
        assert result.error is None or not self.up

    @rule()
    def quit_and_restart(self) -> None:
        self._quit()
        self.services = self._open()

    def _quit(self) -> None:
        summary = self.s.shutdown()
        self.services = None
        assert summary is not None
        if not self.up:
            return  # nothing can be released: the leases expire on the server on their own
        assert not summary.unreleased
        # What quit kept is only what the rules let it keep.
        with self._store() as store:
            for record in store.lease_records():
                if record.origin is LeaseOrigin.PREFETCH:
                    assert record.has_draft, "a prefetched lease without a draft outlived quit"

    @rule()
    def kill_and_restart(self) -> None:
        s = self.s
        # As SIGKILL would leave it: no release, no goodbye; threads simply stop.
        s.prefetcher.close(release_unused=False, timeout=2)
        if s.sync is not None:
            s.sync.stop()
        s.workbench.connectivity.stop()
        s.store.close()
        s.player.close()
        if s.profile_lock is not None:
            s.profile_lock.release()  # the kernel drops a killed process's flock
        self.services = self._open()

    @precondition(lambda self: self.up)
    @rule()
    def server_down(self) -> None:
        self.server._kill()
        self.up = False
        wait_for(lambda: self.s.workbench.connectivity.state.link is Link.OFFLINE, timeout=4)

    @precondition(lambda self: not self.up)
    @rule()
    def server_up(self) -> None:
        self.server.start()
        self.up = True
        wait_for(lambda: self.s.workbench.connectivity.state.online, timeout=4)

    @invariant()
    def nothing_submitted_twice_locally(self) -> None:
        keys = [h.clip_id for h in self.s.store.history(1000)]
        assert len(keys) == len(set(keys))

    def _store(self) -> Any:
        from annotator.store.db import LocalStore

        return LocalStore.open()

    def teardown(self) -> None:
        if not self.up:
            self.server.start()
            self.up = True
        if self.services is None:
            self.services = self._open()
        wait_for(lambda: self.s.workbench.connectivity.state.online, timeout=5)
        assert self.s.sync is not None
        summary = self.s.sync.flush(timeout=30)
        assert summary.pending == 0 and summary.rejected == 0, summary
        self._quit()
        rows = [r for r in export(self.server) if r["clip_id"] in self.expected]
        got: dict[str, str] = {}
        for row in rows:
            assert row["clip_id"] not in got, f"clip {row['clip_id']} annotated twice"
            got[row["clip_id"]] = row["transcript"]
        assert got == self.expected


@pytest.mark.slow
def test_random_sittings_lose_and_duplicate_nothing(
    make_live_server: Callable[..., LiveServer],
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_live_server()
    server.ingest(test_wavs(CLIPS_PER_EXAMPLE * (EXAMPLES + 2)))
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home0"))
    Sitting.server = server
    Sitting.home_root = tmp_path
    Sitting.examples = 0
    run_state_machine_as_test(
        Sitting,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
