"""Build the real services (as `annotator` does) and drive the workbench without a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from annotator.services import Services, build_services
from annotator.workbench.outcomes import Form, Shown, Submitted
from tests.fixtures.server import LiveServer
from tests.tui.helpers import client_args


def services_for(server: LiveServer, **extra: Any) -> Services:
    return build_services(client_args(server, **extra))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not met in time")


def next_clip(services: Services, timeout: float = 10.0) -> Shown:
    """Put the next clip on the bench, waiting for the prefetcher when none is ready yet."""
    got: list[Shown] = []

    def ready() -> bool:
        outcome = services.workbench.next()
        if isinstance(outcome, Shown):
            got.append(outcome)
        return bool(got)

    wait_for(ready, timeout, step=0.05)
    return got[0]


def form(text: str, intent: str = "general_greet", **kw: Any) -> Form:
    return Form(transcript=text, intent=intent, **kw)


def submit(services: Services, text: str) -> Submitted:
    outcome = services.workbench.submit(form(text))
    assert isinstance(outcome, Submitted), outcome
    return outcome
