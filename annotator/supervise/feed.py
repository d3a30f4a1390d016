"""`EscalationFeed`: the long-poll thread that keeps the console's list current.

It holds one request open on `GET /v1/escalations?cursor=…&wait=…`; the server answers the moment
anything changes (a new escalation, a transition, an amendment) or after the wait with the same
cursor, and the feed asks again at once. So a new escalation reaches the screen one request
round trip after it reaches the server. A daemon thread, not a Textual worker: a request held
open for 20 s must not hold up quitting (the executor behind thread workers is joined at exit).
Errors back off (0.5 s doubling to 5 s) and are reported each time; the feed never gives up on a
network, it stops only for a refused token. No Textual here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from annotator.supervise.board import ACTIVE
from api.client import ApiError, QueueClient, Unauthorized
from api.models import EscalationPage

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class EscalationFeed:
    def __init__(
        self,
        client_factory: Callable[..., QueueClient],
        *,
        on_page: Callable[[EscalationPage], None],
        on_error: Callable[[BaseException], None],
        wait_s: float,
    ) -> None:
        self._factory = client_factory
        self._on_page = on_page
        self._on_error = on_error
        self._wait_s = wait_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="escalation-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop after the request in flight (the thread is a daemon: exit never waits for it)."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        cursor: str | None = None
        failures = 0
        client: QueueClient | None = None
        try:
            while not self._stop.is_set():
                try:
                    if client is None:
                        client = self._factory()
                    page = client.escalations(
                        state=list(ACTIVE), cursor=cursor, wait=self._wait_s if cursor else 0
                    )
                except Unauthorized as e:
                    self._on_error(e)
                    return
                except ApiError as e:
                    self._on_error(e)
                    if client is not None:
                        client.close()
                        client = None
                    cursor = None  # the first answer after an outage is a full page at once
                    self._stop.wait(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                    failures += 1
                    continue
                except Exception as e:  # noqa: BLE001 - reported; the feed keeps going
                    # The type only: a parse error's chain can quote a transcript.
                    log.warning("escalation feed: %s", type(e).__name__)
                    self._on_error(e)
                    self._stop.wait(BACKOFF_S[-1])
                    continue
                failures = 0
                if self._stop.is_set():
                    return
                if page.cursor != cursor:
                    self._on_page(page)
                cursor = page.cursor
        finally:
            if client is not None:
                client.close()
