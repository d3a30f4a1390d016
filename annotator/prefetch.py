"""Keep the next clips leased, downloaded, verified and decoded before the annotator asks for them.

The annotator's submit key must land on a clip that is already in memory: the network, the sha256
and the decoder all run here, in one background thread, never on the event loop. `take()` only pops
a deque. The same thread renews every lease this client holds (waiting and in use) at about half
its lifetime, and releases the waiting ones as `unused` on close so that nobody waits for a clip
sitting in a closed laptop.

No Textual here: the UI hears about changes through `on_change`, a plain callback invoked from the
prefetch thread (the App wraps it in `call_from_thread`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from api.client import (
    ApiError,
    Gone,
    NotFound,
    OfflineError,
    OnBreak,
    QueueClient,
    RequestRejected,
    ServerError,
    Unauthorized,
    new_idempotency_key,
)
from api.models import Lease, ReleaseReason

if TYPE_CHECKING:
    from annotator.audio.decode import DecodedAudio

log = logging.getLogger(__name__)

#: Waveform resolution handed to the player bar, which resamples it to its own width.
ENVELOPE_BUCKETS = 512
#: Renew a lease once this fraction of its lifetime has passed.
RENEW_AT_FRACTION = 0.5
#: Empty queue or unreachable server: poll again after this, doubling up to the cap.
BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 15.0
REFUSED_MESSAGE = (
    "the server refused your token: set ANNOTATOR_TOKEN (or token in config.toml) to a valid "
    "token and restart"
)


class PrefetchState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    EMPTY = "empty"  # the server has nothing to lease right now
    OFFLINE = "offline"  # the server cannot be reached
    FAILED = "failed"  # the server refuses us (token, role): retrying will not help soon
    ON_BREAK = "on_break"  # a mandatory welfare break: no new leases until it ends
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ReadyClip:
    """A leased clip ready to show: decoded audio, or the reason it cannot be played."""

    lease: Lease
    #: The encoded bytes as served; kept in memory only (plaintext audio never touches disk).
    data: bytes
    audio: DecodedAudio | None
    envelope: list[float]
    error: str | None = None
    fetched_at: float = field(default_factory=time.monotonic)

    @property
    def lease_id(self) -> str:
        return self.lease.lease_id


@dataclass(frozen=True, slots=True)
class PrefetchStatus:
    state: PrefetchState
    ready: int
    message: str = ""
    #: While ON_BREAK: when the break ends (time.monotonic()).
    break_until: float = 0.0


@dataclass(slots=True)
class _Held:
    lease: Lease
    renew_at: float  # monotonic
    ttl_s: float


def _lease_ttl_s(lease: Lease) -> float:
    return max(1.0, (lease.expires_at - datetime.now(UTC)).total_seconds())


def prepare_clip(lease: Lease, data: bytes, *, buckets: int = ENVELOPE_BUCKETS) -> ReadyClip:
    """Verify and decode one clip's audio. Failures become a clip with an error, never an exception:
    the annotator still sees the clip and may flag it or skip it as broken audio."""
    from annotator.audio.decode import AudioDecodeError, decode, envelope, verify_sha256

    try:
        verify_sha256(data, lease.clip.sha256)
    except AudioDecodeError as e:
        return ReadyClip(lease, data, None, [], error=str(e))
    try:
        audio = decode(data)
    except AudioDecodeError as e:
        return ReadyClip(lease, data, None, [], error=f"the audio cannot be decoded: {e}")
    except Exception as e:  # a decoder bug must not kill the prefetch thread
        log.exception("decoder failed")
        return ReadyClip(lease, data, None, [], error=f"the audio cannot be decoded: {e}")
    return ReadyClip(lease, data, audio, envelope(audio, buckets))


class LinkReporter(Protocol):
    """Where the prefetch and sync threads report what the network did (see Connectivity)."""

    def reported_ok(self, source: str) -> None: ...
    def reported_failure(self, source: str, reason: str) -> None: ...


class ClipSource(Protocol):
    """What the annotate screen needs from a prefetcher (tests substitute a fixed list)."""

    depth: int
    lost: deque[str]

    def set_listener(self, on_change: Callable[[], None] | None) -> None: ...
    @property
    def started(self) -> bool: ...
    def start(self) -> None: ...
    def take(self) -> ReadyClip | None: ...
    def request(self) -> None: ...
    def adopt(self, leases: Iterable[Lease]) -> None: ...
    def finish(self, lease_id: str) -> None: ...
    def release(self, lease_id: str, reason: ReleaseReason, detail: str | None = None) -> None: ...
    def wake(self) -> None: ...
    def end_break(self) -> None: ...
    @property
    def status(self) -> PrefetchStatus: ...
    def close(self, *, release_unused: bool = True, timeout: float = 5.0) -> list[Lease]: ...


class Prefetcher:
    """Owns every lease this client holds and keeps `depth` of them ready ahead.

    `depth=0` turns prefetch off: the thread then leases one clip each time `request()` is called
    (the on-demand baseline the benchmark compares against).
    """

    def __init__(
        self,
        client_factory: Callable[[], QueueClient],
        *,
        depth: int = 3,
        ttl_seconds: int | None = None,
        on_change: Callable[[], None] | None = None,
        envelope_buckets: int = ENVELOPE_BUCKETS,
        local_audio: Callable[[str], bytes | None] | None = None,
        on_leased: Callable[[list[Lease]], None] | None = None,
        link: LinkReporter | None = None,
        give_back: Callable[[Lease], bool] | None = None,
        on_given_back: Callable[[Lease], None] | None = None,
    ) -> None:
        self._client_factory = client_factory
        self.depth = max(0, depth)
        self._ttl_seconds = ttl_seconds
        self._on_change = on_change
        self._buckets = envelope_buckets
        # Audio already on disk (offline checkout's encrypted cache), by clip id.
        self._local_audio = local_audio
        #: Called (on this thread) with each batch of new leases before any audio is fetched, so
        #: the store knows every lease this client holds even if it is killed a moment later.
        self._on_leased = on_leased
        self._link = link
        #: Asked (on this thread) about a held lease whose audio is not on this machine once the
        #: server answers: True gives it back (released as unused) instead of fetching its audio
        #: (the workbench: a checked-out lease with no draft). `on_given_back` hears of each.
        self._give_back = give_back
        self._on_given_back = on_given_back
        self._cond = threading.Condition()
        self._ready: deque[ReadyClip] = deque()
        self._held: dict[str, _Held] = {}  # lease_id -> renewal bookkeeping, ready and in use
        self._in_use: set[str] = set()
        self._adopt: deque[Lease] = deque()
        self._releases: deque[tuple[str, ReleaseReason, str | None]] = deque()
        self._demand = 0
        self._state = PrefetchState.STARTING
        self._message = ""
        self._backoff_until = 0.0
        self._backoff_s = BACKOFF_FIRST_S
        #: A welfare break the server imposed (monotonic end): nothing is leased before it, and
        #: `wake` does not cut it short.
        self._break_until = 0.0
        self._stop = False
        self._thread: threading.Thread | None = None
        self._client: QueueClient | None = None
        #: The key of the lease request waiting for an answer (reused by its retries).
        self._lease_key: str | None = None
        self.lost: deque[str] = deque()  # in-use lease ids the server no longer honours
        #: Offline copies that failed their check (each message names the clip; entry deleted).
        self.damaged: deque[str] = deque()

    # -- called from the UI thread (none of these block on the network)

    def set_listener(self, on_change: Callable[[], None] | None) -> None:
        """Called from the prefetch thread when clips arrive, leases are lost or state changes."""
        self._on_change = on_change

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="annotator-prefetch", daemon=True
            )
            self._thread.start()

    def take(self) -> ReadyClip | None:
        """The next ready clip, or None (then `request()` and wait for `on_change`)."""
        with self._cond:
            if not self._ready:
                return None
            clip = self._ready.popleft()
            self._in_use.add(clip.lease_id)
            if self._demand:
                self._demand -= 1
            self._cond.notify()  # refill one
            return clip

    def request(self) -> None:
        """Ask for one clip now; needed only when prefetch is off or the queue ran dry."""
        with self._cond:
            if self._demand <= len(self._ready):
                self._demand += 1
            self._backoff_until = 0.0
            self._cond.notify()

    def adopt(self, leases: Iterable[Lease]) -> None:
        """Leases this client already holds (e.g. from before a crash): fetched first, in order."""
        with self._cond:
            for lease in leases:
                if lease.lease_id not in self._held:
                    self._adopt.append(lease)
                    self._held[lease.lease_id] = _Held(lease, 0.0, _lease_ttl_s(lease))
            self._cond.notify()

    def finish(self, lease_id: str) -> None:
        """The clip was submitted: stop renewing its lease."""
        with self._cond:
            self._in_use.discard(lease_id)
            self._held.pop(lease_id, None)

    def release(self, lease_id: str, reason: ReleaseReason, detail: str | None = None) -> None:
        """Give a lease back (skip, broken audio), in the background."""
        with self._cond:
            self._in_use.discard(lease_id)
            self._held.pop(lease_id, None)
            self._ready = deque(c for c in self._ready if c.lease_id != lease_id)
            self._releases.append((lease_id, reason, detail))
            self._cond.notify()

    def end_break(self) -> None:
        """The server says the welfare break is over: lease again now."""
        with self._cond:
            self._break_until = 0.0
            self._backoff_until = 0.0
            self._cond.notify()

    def wake(self) -> None:
        """Retry now (the network came back, the annotator asked)."""
        with self._cond:
            self._backoff_until = 0.0
            self._backoff_s = BACKOFF_FIRST_S
            self._cond.notify()

    @property
    def status(self) -> PrefetchStatus:
        with self._cond:
            return PrefetchStatus(
                self._state, len(self._ready), self._message, break_until=self._break_until
            )

    @property
    def ready_count(self) -> int:
        with self._cond:
            return len(self._ready)

    def close(self, *, release_unused: bool = True, timeout: float = 5.0) -> list[Lease]:
        """Stop the thread. Skips still queued are always sent; the leases never shown (ready or
        waiting for audio) are released as `unused` with `release_unused`, else returned for the
        caller to decide (the workbench keeps checked-out ones)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._cond:
            unused = [c.lease for c in self._ready] + list(self._adopt)
            self._ready.clear()
            self._adopt.clear()
            pending = list(self._releases)
            self._releases.clear()
            self._state = PrefetchState.CLOSED
        to_release = unused if release_unused else []
        if to_release or pending:
            client = self._client or self._safe_client()
            if client is not None:
                for lease in to_release:
                    self._release_quietly(client, lease.lease_id, ReleaseReason.UNUSED, None)
                for lease_id, reason, detail in pending:
                    self._release_quietly(client, lease_id, reason, detail)
        if self._client is not None:
            self._client.close()
            self._client = None
        return [] if release_unused else unused

    # -- the thread

    def _safe_client(self) -> QueueClient | None:
        try:
            return self._client_factory()
        except ApiError:
            return None

    def _notify_ui(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # the UI may be shutting down; the thread must carry on
                log.debug("on_change failed", exc_info=True)

    def _set_state(self, state: PrefetchState, message: str = "") -> None:
        if self._link is not None:
            if state is PrefetchState.OFFLINE:
                self._link.reported_failure("prefetch", message)
            elif state in (PrefetchState.OK, PrefetchState.EMPTY):
                self._link.reported_ok("prefetch")
        with self._cond:
            changed = (state, message) != (self._state, self._message)
            self._state, self._message = state, message
        if changed:
            self._notify_ui()

    def _run(self) -> None:
        try:
            self._client = self._client_factory()
        except ApiError as e:
            self._set_state(PrefetchState.FAILED, str(e))
            return
        while not self._stopped():
            try:
                self._do_releases()
                self._do_renewals()
                self._do_fill()
            except Exception as e:  # never let one bad answer end prefetching for the shift
                log.exception("prefetch loop")
                self._enter_backoff(PrefetchState.FAILED, f"prefetch failed: {e}")
            with self._cond:
                if self._stop or self._has_work_locked():
                    continue
                self._cond.wait(timeout=self._sleep_for_locked())

    def _stopped(self) -> bool:
        with self._cond:
            return self._stop

    def _has_work_locked(self) -> bool:
        now = time.monotonic()
        if self._releases:
            return True
        if now < max(self._backoff_until, self._break_until):
            return False
        return self._wanted_locked() > 0

    def _wanted_locked(self) -> int:
        return max(self.depth, self._demand) - len(self._ready)

    def _sleep_for_locked(self) -> float:
        now = time.monotonic()
        deadlines = [h.renew_at for h in self._held.values() if h.renew_at > 0]
        if self._backoff_until > now:
            deadlines.append(self._backoff_until)
        if self._break_until > now:
            deadlines.append(self._break_until)
        if not deadlines:
            return 30.0
        return max(0.01, min(deadlines) - now)

    def _enter_backoff(self, state: PrefetchState, message: str = "") -> None:
        with self._cond:
            self._backoff_until = time.monotonic() + self._backoff_s
            self._backoff_s = min(BACKOFF_CAP_S, self._backoff_s * 2)
        self._set_state(state, message)

    def _release_quietly(
        self, client: QueueClient, lease_id: str, reason: ReleaseReason, detail: str | None
    ) -> None:
        try:
            client.release(lease_id, reason, detail)
        except (Gone, NotFound):
            pass  # already expired or released: the clip is back in the queue either way
        except ApiError as e:
            log.info("release %s failed: %s", lease_id, e)

    def _do_releases(self) -> None:
        assert self._client is not None
        while True:
            with self._cond:
                if not self._releases:
                    return
                lease_id, reason, detail = self._releases.popleft()
            self._release_quietly(self._client, lease_id, reason, detail)

    def _do_renewals(self) -> None:
        assert self._client is not None
        now = time.monotonic()
        with self._cond:
            due = [h for h in self._held.values() if 0 < h.renew_at <= now]
        for held in due:
            lease_id = held.lease.lease_id
            try:
                state = self._client.renew(lease_id, self._ttl_seconds)
            except (Gone, NotFound, RequestRejected) as e:
                if isinstance(e, Unauthorized):
                    self._set_state(PrefetchState.FAILED, REFUSED_MESSAGE)
                    return
                self._drop_lost(lease_id)
                continue
            except (OfflineError, ServerError):
                with self._cond:
                    # The lease may still be alive: try again soon, but not in a tight loop.
                    held.renew_at = time.monotonic() + min(10.0, held.ttl_s / 8)
                continue
            ttl = max(1.0, (state.expires_at - datetime.now(UTC)).total_seconds())
            with self._cond:
                held.ttl_s = ttl
                held.renew_at = time.monotonic() + ttl * RENEW_AT_FRACTION

    def _drop_lost(self, lease_id: str) -> None:
        with self._cond:
            self._held.pop(lease_id, None)
            before = len(self._ready)
            self._ready = deque(c for c in self._ready if c.lease_id != lease_id)
            if lease_id in self._in_use:
                self._in_use.discard(lease_id)
                self.lost.append(lease_id)
            changed = before != len(self._ready) or bool(self.lost)
        if changed:
            self._notify_ui()

    def _do_fill(self) -> None:
        assert self._client is not None
        with self._cond:
            backing_off = time.monotonic() < self._backoff_until
            wanted = self._wanted_locked()
        # Leases we already hold come first, but only as many as are wanted: a checkout of a
        # hundred clips must not sit decoded in memory all at once. While the server is away,
        # those whose audio is on disk (offline checkout) still flow, and one without local audio
        # never holds up the ones behind it: it waits, in its place, for the network.
        took = 0
        skipped: list[Lease] = []
        while took < wanted:
            with self._cond:
                if not self._adopt:
                    break
                lease = self._adopt.popleft()
            local = self._cached_audio(lease)
            if local is None and backing_off:
                skipped.append(lease)
                continue
            if local is None and self._gives_back(lease):
                if not self._hand_back(lease):  # the server is away: keep it in its place
                    skipped.append(lease)
                    backing_off = True
                continue
            if not self._download(lease, data=local):
                skipped.append(lease)
                with self._cond:
                    backing_off = time.monotonic() < self._backoff_until
                if not backing_off:
                    break  # stopping, or the server refused us: try again on the next pass
                continue
            took += 1
        if skipped:
            with self._cond:
                self._adopt.extendleft(reversed(skipped))
        with self._cond:
            on_break = time.monotonic() < self._break_until
        if wanted <= 0 or took or backing_off or on_break:
            return
        # A request whose answer never came (timeout, reset, 5xx) is retried under its key: the
        # server answers with the leases it granted then, instead of stranding them.
        key = self._lease_key = self._lease_key or new_idempotency_key()
        try:
            leases = self._client.lease(
                count=min(wanted, 50), ttl_seconds=self._ttl_seconds, idempotency_key=key
            ).leases
        except (OfflineError, ServerError) as e:
            self._enter_backoff(PrefetchState.OFFLINE, str(e))
            return  # the key is kept for the retry
        except RequestRejected as e:
            self._lease_key = None  # answered: the next request is a new one
            if isinstance(e, Unauthorized):
                self._enter_backoff(PrefetchState.FAILED, REFUSED_MESSAGE)
            elif isinstance(e, OnBreak):
                with self._cond:
                    self._break_until = time.monotonic() + e.retry_after_s
                self._set_state(PrefetchState.ON_BREAK, e.error.message)
            else:
                self._enter_backoff(PrefetchState.FAILED, str(e))
            return
        self._lease_key = None
        with self._cond:  # a replay only names leases never heard of here; belt and braces
            leases = [le for le in leases if le.lease_id not in self._held]
        if not leases:
            self._enter_backoff(PrefetchState.EMPTY, "no clips waiting in the queue")
            return
        if self._on_leased is not None:
            try:
                self._on_leased(leases)
            except Exception:  # bookkeeping must not stop the clips; they are renewed anyway
                log.exception("recording new leases failed")
        with self._cond:
            self._backoff_s = BACKOFF_FIRST_S
            for lease in leases:
                ttl = _lease_ttl_s(lease)
                self._held[lease.lease_id] = _Held(
                    lease, time.monotonic() + ttl * RENEW_AT_FRACTION, ttl
                )
        for i, lease in enumerate(leases):
            if not self._download(lease):
                with self._cond:  # keep the rest; their audio comes when the server is back
                    self._adopt.extendleft(reversed(leases[i:]))
                return

    def _gives_back(self, lease: Lease) -> bool:
        if self._give_back is None:
            return False
        try:
            return self._give_back(lease)
        except Exception:  # when in doubt keep the lease: its audio is fetched as before
            log.exception("deciding whether to give back %s failed", lease.lease_id)
            return False

    def _hand_back(self, lease: Lease) -> bool:
        """Release an adopted lease whose audio is not here. False: the server did not answer."""
        assert self._client is not None
        try:
            self._client.release(lease.lease_id, ReleaseReason.UNUSED, None)
        except (Gone, NotFound):
            pass  # expired or released already: back in the queue either way
        except (OfflineError, ServerError) as e:
            self._enter_backoff(PrefetchState.OFFLINE, str(e))
            return False
        except ApiError as e:
            log.info("giving back %s refused: %s", lease.lease_id, e)
        with self._cond:
            self._held.pop(lease.lease_id, None)
        if self._on_given_back is not None:
            try:
                self._on_given_back(lease)
            except Exception:
                log.exception("forgetting a given-back lease failed")
        return True

    def _cached_audio(self, lease: Lease) -> bytes | None:
        if self._local_audio is None:
            return None
        from annotator.store.cache import CacheEntryDamaged

        try:
            return self._local_audio(lease.clip.clip_id)
        except CacheEntryDamaged as e:  # deleted: fetched again from the server when it answers
            with self._cond:
                self.damaged.append(str(e))
            self._notify_ui()
            return None
        except Exception:  # an unreadable entry is fetched again from the server
            log.info("cached audio for %s unreadable", lease.clip.clip_id, exc_info=True)
            return None

    def _download(self, lease: Lease, *, data: bytes | None = None) -> bool:
        """Fetch (unless `data` is the cached audio), verify and decode one clip. False: it must
        wait for the network (the caller keeps the lease for later); True: done with it, ready or
        dropped."""
        assert self._client is not None
        with self._cond:
            if self._stop:
                return False
        from_network = data is None
        if data is None:
            try:
                data = self._client.audio(lease.lease_id)
            except Unauthorized:
                self._set_state(PrefetchState.FAILED, REFUSED_MESSAGE)
                return False
            except (Gone, NotFound, RequestRejected):
                self._drop_lost(lease.lease_id)
                return True
            except (OfflineError, ServerError) as e:
                self._enter_backoff(PrefetchState.OFFLINE, str(e))
                return False
        clip = prepare_clip(lease, data, buckets=self._buckets)
        with self._cond:
            held = self._held.get(lease.lease_id)
            if held is None:  # released while we were downloading
                return True
            if held.renew_at == 0.0:
                held.renew_at = time.monotonic() + held.ttl_s * RENEW_AT_FRACTION
            self._ready.append(clip)
        if from_network:
            self._set_state(PrefetchState.OK)
        self._notify_ui()
        return True
