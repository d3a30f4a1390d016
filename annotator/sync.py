"""The sync engine: a daemon thread that drains the outbox to the server, exactly once per key.

The TUI never waits on the network: `LocalStore.submit` makes the work durable, `wake()` pokes
this thread, and the thread does every request. Exactly-once rests on the server's Idempotency-Key
rule and on this engine never changing a body under a key (the store freezes a body at its first
attempt). Backoff state lives in the outbox rows (`next_attempt_at`), so a restart after a crash
neither hammers a dead server nor forgets a schedule; an explicit flush (`annotator sync`) ignores
the schedule because the annotator asked for it now.

Error mapping, per item: 200/201 → acknowledged; 409 → conflicts list; other 4xx → rejected (kept,
visible); 5xx, 429, transport failures, and auth failures of the whole request (401, a token
without the annotator role) → retried with exponential backoff and jitter, item untouched.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from annotator.store.cache import ClipCache
from annotator.store.db import LocalStore
from annotator.store.models import OutboxItem, OutboxKind
from api.client import (
    ApiError,
    Conflict,
    OfflineError,
    ProtocolError,
    QueueClient,
    RequestRejected,
    ServerError,
    Unauthorized,
)
from api.models import (
    MAX_BATCH_ITEMS,
    AnnotationIn,
    AnnotationPatch,
    AnnotationStatus,
    BatchItem,
    BatchItemResult,
    Receipt,
)

if TYPE_CHECKING:
    from annotator.prefetch import LinkReporter

log = logging.getLogger("annotator.sync")

#: Whole-request refusals that say "this token cannot submit now", not "this item is bad".
_AUTH_REASONS = frozenset({"bad_token", "missing_token", "forbidden_role"})
#: With this many items or fewer due, one POST each (lowest latency after a keypress).
SINGLE_MAX = 2
IDLE_POLL_S = 30.0
HOUSEKEEPING_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with additive jitter, the shape stamina uses:
    min(cap, initial * base**(n-1) + uniform(0, jitter))."""

    initial: float = 1.0
    cap: float = 120.0
    base: float = 2.0
    jitter: float = 1.0

    def delay(self, failures: int) -> float:
        exp = self.initial * self.base ** min(max(failures, 1) - 1, 60)
        return min(self.cap, exp + random.uniform(0, self.jitter))


@dataclass(frozen=True, slots=True)
class SyncEvent:
    """What one round did, for the TUI's stats bar (delivered on the engine's thread)."""

    sent: int = 0
    late: int = 0
    amended: int = 0
    conflicts: int = 0
    rejected: int = 0
    #: Outbox rows still waiting, and the total on the conflicts list, after the round.
    pending: int = 0
    conflicts_total: int = 0
    online: bool = True
    went_offline: bool = False
    came_online: bool = False
    #: Why the last attempt failed, without tokens or transcripts.
    error: str | None = None
    next_retry_in: float | None = None


@dataclass(slots=True)
class SyncSummary:
    """Totals of a flush (for `annotator sync` and tests)."""

    accepted: int = 0
    late: int = 0
    amended: int = 0
    conflicts: int = 0
    rejected: int = 0
    pending: int = 0
    requests: int = 0
    error: str | None = None
    receipts: list[Receipt] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.accepted + self.late

    def add(self, other: SyncSummary) -> None:
        self.accepted += other.accepted
        self.late += other.late
        self.amended += other.amended
        self.conflicts += other.conflicts
        self.rejected += other.rejected
        self.requests += other.requests
        self.error = other.error or self.error
        self.receipts.extend(other.receipts)


class _Transient(Exception):
    """The whole attempt failed in a way that time may fix."""

    def __init__(self, message: str, *, offline: bool) -> None:
        super().__init__(message)
        self.offline = offline


def _classify(e: ApiError) -> _Transient | None:
    """A transient failure of the whole request, or None when the server judged the item."""
    if isinstance(e, OfflineError | ServerError | ProtocolError):
        return _Transient(f"{type(e).__name__}: {e}", offline=isinstance(e, OfflineError))
    if isinstance(e, RequestRejected) and (
        e.status_code == 429 or isinstance(e, Unauthorized) or e.reason in _AUTH_REASONS
    ):
        return _Transient(f"{e.status_code} {e.reason}", offline=False)
    return None


class SyncEngine:
    def __init__(
        self,
        store: LocalStore,
        client_factory: Callable[[], QueueClient],
        *,
        on_event: Callable[[SyncEvent], None] | None = None,
        on_acknowledged: Callable[[str], None] | None = None,
        cache: ClipCache | None = None,
        batch_size: int = 200,
        backoff: Backoff | None = None,
        link: LinkReporter | None = None,
    ) -> None:
        self.store = store
        self._client_factory = client_factory
        self.on_event = on_event
        self.on_acknowledged = on_acknowledged
        self.cache = cache
        self.batch_size = max(1, min(batch_size, MAX_BATCH_ITEMS))
        self.backoff = backoff or Backoff()
        #: The connectivity owner this engine reports answers and transport failures to.
        self.link = link
        #: False after a transport or server failure, True again once the server answers.
        self.online = True
        self.last_error: str | None = None
        self._client: QueueClient | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_housekeeping = 0.0
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        #: Set by `wake(force=True)`: the next pass ignores the backoff schedule, once.
        self._force_next = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="annotator-sync", daemon=True)
        self._thread.start()

    def wake(self, force: bool = False) -> None:
        """Send now (called after each submit); returns at once.

        With `force`, the next pass ignores the due times of backoff, once: the TUI calls it when
        the server answers again (another thread saw it), so work that sat out a retry delay
        leaves at once instead of up to the backoff cap later."""
        if force:
            self._force_next.set()
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread. Unsent work stays in the outbox for the next start, so quitting never
        waits on the network for longer than `timeout`."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("sync thread still inside a request after %.1fs; leaving it", timeout)
                return
        self._thread = None
        with self._send_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def flush(self, timeout: float = 60.0) -> SyncSummary:
        """Send everything pending now, ignoring backoff, in the caller's thread (the CLI, tests).
        Stops at the first transient failure (the error is in the summary) or at the deadline."""
        deadline = time.monotonic() + timeout
        total = SyncSummary()
        while time.monotonic() < deadline:
            part = self._round(force=True, deadline=deadline)
            total.add(part)
            if part.error is not None or self.store.outbox_count() == 0 or part.requests == 0:
                break
        total.pending = self.store.outbox_count()
        return total

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
                wait = self._sleep_for()
            except Exception:  # the thread must outlive any one bad round (a busy disk, say)
                log.exception("sync round failed")
                wait = IDLE_POLL_S
            self._wake.wait(wait)
            self._wake.clear()

    def _tick(self) -> None:
        now = time.time()
        was_online = self.online
        force = self._force_next.is_set()
        self._force_next.clear()
        if force and not self.online:
            # Someone saw the server answer: one cheap probe checks it before anything is
            # claimed. Its success makes every waiting item due (`_answered`); its failure leaves
            # the schedule as it was, so a wrong tip never lengthens the backoff.
            self._probe(counted=False)
        summary = self._round(force=force and self.online, stoppable=True)
        if summary.requests == 0 and not self.online and not force and now >= self._retry_at:
            self._probe()
        if now - self._last_housekeeping >= HOUSEKEEPING_EVERY_S:
            self._last_housekeeping = now
            self._housekeeping()
        if summary.requests or was_online != self.online or (force and not self.online):
            self._emit(summary, was_online)

    def _sleep_for(self) -> float:
        if self._stopping.is_set():
            return 0.0
        now = time.time()
        due = self.store.next_due_at()
        wait = IDLE_POLL_S if due is None else due - now
        if not self.online:
            # Offline, nothing leaves before the backoff ends (a wake() after a submit still
            # tries that one item at once: a keypress is a cheap probe).
            backoff = self._retry_at - now
            wait = backoff if due is None else max(wait, backoff)
        return max(0.0, min(wait, IDLE_POLL_S))

    def _probe(self, *, counted: bool = True) -> None:
        """Ask the server for its health; `counted=False`: a failure does not add to backoff."""
        try:
            self._get_client().health()
        except _Transient as failure:
            self._probe_failed(failure, counted)
            return
        except ApiError as e:
            self._probe_failed(_classify(e) or _Transient(str(e), offline=False), counted)
            return
        self._answered()

    def _probe_failed(self, failure: _Transient, counted: bool) -> None:
        if counted:
            self._failed(failure)
        else:
            self.last_error = str(failure)

    def _housekeeping(self) -> None:
        if self.cache is None:
            return
        for clip_id in self.store.sweep_expired():
            self.cache.delete(clip_id)
        self.cache.prune(self.store.live_clip_ids())

    def _emit(self, s: SyncSummary, was_online: bool) -> None:
        if self.on_event is None:
            return
        event = SyncEvent(
            sent=s.sent,
            late=s.late,
            amended=s.amended,
            conflicts=s.conflicts,
            rejected=s.rejected,
            pending=self.store.outbox_count(),
            conflicts_total=self.store.conflict_count(),
            online=self.online,
            went_offline=was_online and not self.online,
            came_online=self.online and not was_online,
            error=s.error,
            next_retry_in=None if self.online else max(0.0, self._retry_at - time.time()),
        )
        try:
            self.on_event(event)
        except Exception:  # a UI callback must not stop the outbox
            log.exception("sync event handler failed")

    # ------------------------------------------------------------------ sending

    def _get_client(self) -> QueueClient:
        if self._client is None:
            try:
                self._client = self._client_factory()
            except Exception as e:  # a config problem must never reject queued work
                raise _Transient(f"cannot create the client: {e}", offline=False) from e
        return self._client

    def _round(
        self, *, force: bool, deadline: float | None = None, stoppable: bool | None = None
    ) -> SyncSummary:
        """One pass over what is due (everything, with `force`). `stoppable` (default: not
        `force`) ends the pass when `stop()` is called; an explicit flush finishes its work."""
        stoppable = not force if stoppable is None else stoppable
        total = SyncSummary()
        with self._send_lock:
            try:
                self._get_client()
            except _Transient as t:
                self._failed(t)
                total.error = str(t)
                return total
            for kind in (OutboxKind.SUBMIT, OutboxKind.AMEND):
                while not (stoppable and self._stopping.is_set()):
                    if deadline is not None and time.monotonic() >= deadline:
                        return total
                    limit = self.batch_size if kind is OutboxKind.SUBMIT else 50
                    items = self.store.claim_due(limit, kind=kind, force=force)
                    if not items:
                        break
                    part = SyncSummary()
                    try:
                        if kind is OutboxKind.AMEND:
                            self._send_amendments(items, part)
                        elif len(items) <= SINGLE_MAX:
                            self._send_singly(items, part)
                        else:
                            self._send_batch(items, part)
                    except _Transient as t:
                        part.error = str(t)
                    total.add(part)
                    if part.error is not None:
                        return total
        return total

    def _parsed(
        self, items: Sequence[OutboxItem], out: SyncSummary
    ) -> list[tuple[OutboxItem, AnnotationIn]]:
        """Each row's body checked on its own: a malformed one (a damaged disk, an old version)
        is rejected with its reason and the rest go; the error names fields, never their text."""
        good: list[tuple[OutboxItem, AnnotationIn]] = []
        for item in items:
            try:
                good.append((item, item.annotation()))
            except ValueError as e:  # pydantic's ValidationError is a ValueError
                self._malformed(item, e, out)
        return good

    def _malformed(self, item: OutboxItem, e: ValueError, out: SyncSummary) -> None:
        message = "the saved submission is malformed: " + _describe_invalid(e)
        self.store.mark_rejected(item.key, 0, "malformed", message)
        out.rejected += 1
        log.warning("submission %s… rejected locally (malformed)", item.key[:8])

    def _send_singly(self, items: Sequence[OutboxItem], out: SyncSummary) -> None:
        parsed = self._parsed(items, out)
        for n, (item, annotation) in enumerate(parsed):
            try:
                out.requests += 1
                receipt = self._get_client().submit(annotation, item.key)
            except ApiError as e:
                transient = _classify(e)
                if transient is not None:
                    self._retry([i for i, _ in parsed[n:]], transient)
                    raise transient from e
                self._answered()
                self._judged(item, e, out)
                continue
            self._answered()
            self._acknowledge([(item.key, receipt)], out)

    def _send_batch(self, claimed: Sequence[OutboxItem], out: SyncSummary) -> None:
        parsed = self._parsed(claimed, out)
        if not parsed:
            return
        items = [i for i, _ in parsed]
        batch = [BatchItem(idempotency_key=i.key, annotation=a) for i, a in parsed]
        try:
            out.requests += 1
            response = self._get_client().submit_batch(batch)
        except ApiError as e:
            transient = _classify(e)
            if transient is not None:
                self._retry(items, transient)
                raise transient from e
            # The envelope itself was refused (too large, malformed): isolate items one by one.
            self._answered()
            log.warning("batch refused (%s); sending its items one by one", type(e).__name__)
            self._send_singly(items, out)
            return
        self._answered()
        by_key: dict[str, BatchItemResult] = {r.idempotency_key: r for r in response.results}
        acks: list[tuple[str, Receipt]] = []
        unanswered: list[OutboxItem] = []
        for item in items:
            r = by_key.get(item.key)
            if r is not None and r.receipt is not None and r.status_code < 300:
                acks.append((item.key, r.receipt))
            elif r is None or r.error is None or r.status_code >= 500 or r.status_code == 429:
                unanswered.append(item)
            else:
                self._judged(item, RequestRejected(r.status_code, r.error), out)
        self._acknowledge(acks, out)
        if unanswered:
            t = _Transient(f"{len(unanswered)} batch items not stored; will retry", offline=False)
            self._retry(unanswered, t)
            raise t

    def _send_amendments(self, items: Sequence[OutboxItem], out: SyncSummary) -> None:
        for n, item in enumerate(items):
            assert item.annotation_id is not None  # claim_due only returns sendable amendments
            try:
                try:
                    patch = AnnotationPatch.model_validate_json(item.body_json)
                except ValueError as bad:
                    self._malformed(item, bad, out)
                    continue
                out.requests += 1
                annotation = self._get_client().amend(item.annotation_id, patch)
            except ApiError as e:
                transient = _classify(e)
                if transient is not None:
                    self._retry(items[n:], transient)
                    raise transient from e
                self._answered()
                status, reason = _status_reason(e)
                self.store.mark_rejected(item.key, status, reason, str(e))
                out.rejected += 1
                continue
            self._answered()
            self.store.mark_amend_sent(item.key, annotation.amend_until)
            out.amended += 1

    # ------------------------------------------------------------------ bookkeeping

    def _acknowledge(self, acks: list[tuple[str, Receipt]], out: SyncSummary) -> None:
        if not acks:
            return
        clip_ids = self.store.mark_sent_many(acks)
        for _, receipt in acks:
            out.receipts.append(receipt)
            if receipt.status is AnnotationStatus.LATE:
                out.late += 1
            else:
                out.accepted += 1
        for clip_id in clip_ids:
            if self.cache is not None:
                self.cache.delete(clip_id)
            if self.on_acknowledged is not None:
                try:
                    self.on_acknowledged(clip_id)
                except Exception:
                    log.exception("on_acknowledged handler failed")

    def _judged(self, item: OutboxItem, e: ApiError, out: SyncSummary) -> None:
        status, reason = _status_reason(e)
        message = e.error.message if isinstance(e, RequestRejected) else str(e)
        if isinstance(e, Conflict) or status == 409:
            self.store.mark_conflict(item.key, reason, message)
            out.conflicts += 1
            log.info("submission %s… in conflict (%s)", item.key[:8], reason)
        else:
            self.store.mark_rejected(item.key, status, reason, message)
            out.rejected += 1
            log.warning("submission %s… rejected (%d %s)", item.key[:8], status, reason)

    def _retry(self, items: Sequence[OutboxItem], t: _Transient) -> None:
        self._failed(t)
        self.store.mark_retry_many([i.key for i in items], str(t), self._retry_at)

    def _failed(self, t: _Transient) -> None:
        self._failures += 1
        self._retry_at = time.time() + self.backoff.delay(self._failures)
        self.last_error = str(t)
        if self.link is not None and t.offline:
            self.link.reported_failure("sync", str(t))
        if self.online:
            log.info("sync: server unavailable (%s); retrying with backoff", t)
        self.online = False

    def _answered(self) -> None:
        if self.link is not None:
            self.link.reported_ok("sync")
        self._failures = 0
        self.last_error = None
        if not self.online:
            self.online = True
            log.info("sync: server answers again")
            # Items that sat out backoff need not wait any longer.
            self.store.reschedule_pending()


def _describe_invalid(e: ValueError) -> str:
    """Which fields are wrong and how, without the values (they may quote a transcript)."""
    errors = getattr(e, "errors", None)
    if callable(errors):
        try:
            parts = [
                f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('type')}"
                for err in errors(include_input=False, include_url=False)
            ]
        except TypeError:
            parts = []
        if parts:
            return "; ".join(parts[:5])
    return type(e).__name__


def _status_reason(e: ApiError) -> tuple[int, str]:
    if isinstance(e, RequestRejected):
        return e.status_code, e.reason
    return 0, type(e).__name__
