"""Check clips out for offline work: the one implementation behind `annotator checkout` and alt+o.

Each clip's audio is verified against its sha256 and put in the encrypted cache before its lease
is recorded, so a crash never leaves a lease whose audio is missing (an orphan cache entry is
pruned by the sync engine). Downloads run on a few threads; transient failures are retried with
stamina. Blocking: the TUI runs it in a thread worker. Failures of the whole run end it early and
come back in the result with what was checked out before, never as an exception.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from annotator.store.cache import ClipCache
from annotator.store.db import LocalStore
from annotator.store.models import LeaseOrigin
from api.client import (
    ApiError,
    Gone,
    NotFound,
    OfflineError,
    QueueClient,
    RequestRejected,
    ServerError,
    new_idempotency_key,
)
from api.models import MAX_LEASE_COUNT, MAX_TTL_SECONDS, Lease, ReleaseReason

DOWNLOAD_THREADS = 4
T = TypeVar("T")


@dataclass(slots=True)
class CheckoutResult:
    asked: int
    leases: list[Lease] = field(default_factory=list)
    #: "clip_id: why" for each clip whose audio was unusable (its lease was released).
    broken: list[str] = field(default_factory=list)
    #: What ended the run early, if anything (then `leases` holds what was done before it).
    error: ApiError | None = None

    @property
    def short(self) -> bool:
        """The queue had fewer clips than asked for."""
        return self.error is None and len(self.leases) + len(self.broken) < self.asked


def checkout(
    client_factory: Callable[[], QueueClient],
    cache: ClipCache,
    store: LocalStore,
    count: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> CheckoutResult:
    """Lease up to `count` clips for the server's longest lease and cache their audio.

    `progress(done, total)` is called from this thread after each clip."""
    from annotator.workbench.sitting import session_alive, this_session

    result = CheckoutResult(asked=count)
    try:
        client = client_factory()
    except ApiError as e:
        result.error = e
        return result
    me = this_session()
    # Requests of a checkout killed before it recorded all it was granted: asked again first,
    # under their keys, the server answers with those leases (those still live).
    orphans = [k for k, who in store.lease_requests() if who != me and not session_alive(who)]
    known = {r.lease_id for r in store.lease_records()}
    try:
        with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
            while len(result.leases) + len(result.broken) < count:
                n = min(MAX_LEASE_COUNT, count - len(result.leases) - len(result.broken))
                # One key for this request and all its retries: a lost answer is not a loss,
                # and it is on disk before the request leaves: neither is a kill -9 here.
                key = orphans.pop(0) if orphans else new_idempotency_key()
                store.note_lease_request(key, me)
                leases = _retrying(partial(client.lease, n, MAX_TTL_SECONDS, key)).leases
                if not leases:
                    store.lease_request_done(key)
                    break
                leases = [le for le in leases if le.lease_id not in known]
                for lease, outcome in zip(
                    leases, pool.map(lambda le: _download(client, le), leases), strict=True
                ):
                    if isinstance(outcome, bytes):
                        cache.put(lease.clip.clip_id, outcome)
                        store.remember_leases([lease], origin=LeaseOrigin.CHECKOUT, session=None)
                        result.leases.append(lease)
                    else:
                        result.broken.append(f"{lease.clip.clip_id}: {outcome}")
                        _release_quietly(client, lease)
                    known.add(lease.lease_id)
                    if progress is not None:
                        progress(len(result.leases) + len(result.broken), count)
                store.lease_request_done(key)
    except ApiError as e:
        result.error = e
    finally:
        client.close()
    return result


def _retrying(call: Callable[[], T]) -> T:
    # Imported here: stamina (and tenacity, tornado) cost ~20 ms, and every start of the TUI
    # imports this module while only "go offline" and `annotator checkout` retry.
    import stamina

    for attempt in stamina.retry_context(
        on=(OfflineError, ServerError), attempts=4, wait_initial=0.5, wait_max=5.0
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable")  # pragma: no cover


def _download(client: QueueClient, lease: Lease) -> bytes | str:
    """The verified audio, or why it is unusable (a string)."""
    try:
        data = _retrying(lambda: client.audio(lease.lease_id))
    except RequestRejected as e:
        return f"{e.status_code} {e.reason}"
    if hashlib.sha256(data).hexdigest() != lease.clip.sha256:
        return "audio does not match its sha256"
    return data


def _release_quietly(client: QueueClient, lease: Lease) -> None:
    # If this fails the lease simply expires and the clip returns to the queue then.
    with contextlib.suppress(ApiError):
        client.release(lease.lease_id, ReleaseReason.BROKEN_AUDIO, "checkout: unusable audio")


def release_leases(
    client_factory: Callable[..., QueueClient],
    leases: list[Lease],
    detail: str,
    *,
    timeout: float = 10.0,
) -> set[str]:
    """Give leases back as `unused`; the ids the server no longer holds for us. Stops at the
    first transport failure (the rest would wait out the same timeout) and leaves those."""
    gone: set[str] = set()
    try:
        try:
            client = client_factory(timeout=timeout)
        except TypeError:  # a factory without a timeout (tests, embedders)
            client = client_factory()
    except ApiError:
        return gone
    with client:
        for lease in leases:
            try:
                client.release(lease.lease_id, ReleaseReason.UNUSED, detail)
            except (Gone, NotFound):
                gone.add(lease.lease_id)  # expired or released already: not ours either way
            except RequestRejected:
                continue  # refused for this lease alone: it expires on the server
            except ApiError:
                break
            else:
                gone.add(lease.lease_id)
    return gone
