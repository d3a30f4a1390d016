"""Check clips out for offline work from inside the TUI (the "go offline" action).

The same order as `annotator checkout`: each clip's verified audio goes into the encrypted cache
before its lease is handed back, so a crash never leaves a lease whose audio is missing. Blocking
network calls: run it in a thread worker. No Textual here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from annotator.store.cache import ClipCache
from api.client import QueueClient
from api.models import MAX_LEASE_COUNT, MAX_TTL_SECONDS, Lease, ReleaseReason


def checkout_to_cache(
    client_factory: Callable[[], QueueClient], cache: ClipCache, count: int
) -> list[Lease]:
    """Lease up to `count` clips for the server's longest lease and cache their audio."""
    got: list[Lease] = []
    with client_factory() as client:
        while len(got) < count:
            leases = client.lease(min(MAX_LEASE_COUNT, count - len(got)), MAX_TTL_SECONDS).leases
            if not leases:
                break
            for lease in leases:
                data = client.audio(lease.lease_id)
                if hashlib.sha256(data).hexdigest() != lease.clip.sha256:
                    client.release(lease.lease_id, ReleaseReason.BROKEN_AUDIO, "checkout")
                    continue
                cache.put(lease.clip.clip_id, data)
                got.append(lease)
    return got
