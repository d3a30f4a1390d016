"""A supervisor's or an admin's token opening plain `annotator` is told about the console.

Asked once, off the event loop, after the annotate screen is up: the escalation list answers a
supervisor or an admin and refuses an annotator (403), so no role route is needed. Offline or
refused, nothing is said. No Textual here: the App runs it in a thread worker.
"""

from __future__ import annotations

from collections.abc import Callable

from api.client import ApiError, QueueClient

HINT = (
    "Your token is a supervisor's: `annotator supervise` opens the escalations console "
    "(list, audio, acknowledge, resolve). This screen annotates clips."
)


def supervisor_hint(client_factory: Callable[..., QueueClient] | None) -> str | None:
    """The hint when the configured token may read the escalation list, else None."""
    if client_factory is None:
        return None
    try:
        with client_factory(timeout=5.0) as client:
            client.escalations(limit=1)
    except ApiError:
        return None  # an annotator's token (403), a refused one, or no server: nothing to say
    return HINT
