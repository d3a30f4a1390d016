"""The workbench: one owner for the annotator's sitting, with no Textual in it.

It holds the ready queue (the prefetcher), every lease this session holds (recorded when leased,
finished or released; adopted once at start, including what a killed session on this host left
behind), the clip on the bench and its draft, and the verbs: submit, skip, undo/amend, checkout,
quit. Each verb returns an outcome value (`outcomes.py`); the annotate screen maps keys to verbs
and draws the outcomes, so the workflow is testable without a terminal.

The hot path stays local: `submit` is one SQLite transaction and a deque pop follows in `next`.
Everything on the network runs in the prefetch, sync and connectivity threads, or in `checkout`
and `close`, which block and are called from a worker thread or at exit.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from annotator.prefetch import ClipSource, PrefetchState, ReadyClip
from annotator.session import ClipClock, Session
from annotator.store.cache import ClipCache
from annotator.store.db import AlreadySubmitted, AmendError, LocalStore
from annotator.store.models import Draft, HistoryItem, LeaseOrigin, LeaseRecord, OutboxState
from annotator.sync import SyncEngine
from annotator.workbench.checkout import CheckoutResult, checkout, release_leases
from annotator.workbench.connectivity import Connectivity
from annotator.workbench.outcomes import (
    Amended,
    Escalation,
    Form,
    Invalid,
    QueueNews,
    QuitSummary,
    Refused,
    Reopened,
    Shown,
    Skipped,
    Submitted,
    Waiting,
)
from api.client import ApiError, QueueClient
from api.models import AnnotationIn, Lease, ReleaseReason
from api.taxonomy import TaxonomyIndex

log = logging.getLogger(__name__)

#: Releasing at quit must not hold the terminal for long when the server is away.
QUIT_RELEASE_TIMEOUT_S = 3.0
#: How far back the history list reaches (the amend window is the real limit).
AMENDABLE_LISTED = 200
#: Submissions counted for the shift's most used intents (digits 4–9): about two shifts.
FREQUENT_FROM = 2000
#: How often a running annotator looks for clips `annotator checkout` recorded in another
#: terminal (one indexed count each time).
CHECKOUT_WATCH_S = 2.0


def this_session() -> str:
    """`host:pid:start`: names this process so a later one can tell whether it is still alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            # Field 22 (starttime) follows the parenthesised command name, which may hold spaces.
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def session_alive(session: str) -> bool:
    """Whether the session that holds a lease may still be running (unknown hosts: assume so)."""
    host, _, rest = session.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if not process_alive(pid) or _zombie(pid):
        return False
    return start == "?" or _start_ticks(pid) == start  # a recycled pid is another process


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent: gone for every purpose here. (tmux marks a
    pane dead when its pty closes, which can be a moment before it reaps the process.)"""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Amending:
    """Undo in progress: the reopened submission, and the clip put aside to come back to."""

    item_key: str
    parked: ReadyClip | None
    parked_clock: ClipClock | None


class Workbench:
    def __init__(
        self,
        *,
        store: LocalStore,
        prefetcher: ClipSource,
        index: TaxonomyIndex | None,
        session: Session,
        clock: Callable[[], float],
        sync: SyncEngine | None = None,
        connectivity: Connectivity | None = None,
        cache: ClipCache | None = None,
        client_factory: Callable[..., QueueClient] | None = None,
        session_id: str | None = None,
    ) -> None:
        self.store = store
        self.prefetcher = prefetcher
        #: None only while launch is still loading the taxonomy (nothing is submitted before).
        self.index = index
        self.session = session
        self._clock = clock
        self.sync = sync
        self.connectivity = connectivity or Connectivity(None)
        self.cache = cache
        self.client_factory = client_factory
        self.session_id = session_id or this_session()
        self.current: ReadyClip | None = None
        self.clip_clock: ClipClock | None = None
        self.previous: ReadyClip | None = None  # the last submitted clip, for undo's audio
        self.amending: _Amending | None = None
        self._adopted = False
        self._started = False
        self._watch_stop = threading.Event()
        self._closed: QuitSummary | None = None
        #: Escalated submissions (clip id → flags) and when the server acknowledged them.
        self._escalations: dict[str, tuple[str, ...]] = {}
        self._delivered: dict[str, datetime] = {}
        self.connectivity.add_waker(prefetcher.wake)
        self.connectivity.add_waker(self._wake_sync)

    def attach_sync(self, sync: SyncEngine) -> None:
        """Launch builds the sync engine after prefetching has started."""
        self.sync = sync

    def _wake_sync(self) -> None:
        if self.sync is not None:
            self.sync.wake(force=True)  # work that sat out backoff leaves now

    # ------------------------------------------------------------------ the sitting

    def record_leased(self, leases: list[Lease]) -> None:
        """The prefetcher's `on_leased`: every lease is on disk before its audio is fetched."""
        self.store.remember_leases(leases, origin=LeaseOrigin.PREFETCH, session=self.session_id)

    def gives_back(self, lease: Lease) -> bool:
        """The prefetcher's `give_back` (its thread, once the server answers): a checked-out
        lease whose audio is not in the cache (never fetched, or its copy failed its check) and
        that holds no draft goes back to the queue rather than being fetched here: it was taken
        for offline work that can no longer happen on it. One holding a draft is kept (fetched
        and shown): the draft is work. Prefetched leases (a killed session's) are fetched."""
        if self.cache is None or lease.clip.clip_id in self.cache:
            return False  # the cache is not open yet: it may well be there
        record = next((r for r in self.store.lease_records() if r.lease_id == lease.lease_id), None)
        return record is not None and record.origin is LeaseOrigin.CHECKOUT and not record.has_draft

    def given_back(self, lease: Lease) -> None:
        """The prefetcher's `on_given_back`: the server has the lease back."""
        self.store.forget_lease(lease.lease_id)

    def adopt(self) -> list[LeaseRecord]:
        """Hand the prefetcher, once, every live lease this session may work on: checked-out
        ones, its own, and those of a session on this host that is gone (killed with its
        terminal). The clip that was on screen comes first. Returns what was adopted."""
        if self._adopted:
            return []
        self._adopted = True
        current = self.store.current_lease_id()
        records = [
            r
            for r in self.store.lease_records()
            if r.origin is LeaseOrigin.CHECKOUT
            or r.session is None
            or r.session == self.session_id
            or not session_alive(r.session)
        ]
        records.sort(key=lambda r: r.lease_id != current)
        self.store.claim_leases([r.lease_id for r in records], self.session_id)
        self.prefetcher.adopt([r.lease for r in records])
        return records

    def adopt_checked_out(self) -> list[LeaseRecord]:
        """Adopt clips checked out since the start by `annotator checkout` in another terminal
        (recorded with no session): offline work that must not wait for a restart to appear."""
        if not self._adopted or not self.store.unclaimed_checkouts():
            return []
        records = [
            r
            for r in self.store.lease_records()
            if r.origin is LeaseOrigin.CHECKOUT and r.session is None
        ]
        self.store.claim_leases([r.lease_id for r in records], self.session_id)
        self.prefetcher.adopt([r.lease for r in records])
        return records

    def _watch_checkouts(self) -> None:
        while not self._watch_stop.wait(CHECKOUT_WATCH_S):
            try:
                self.adopt_checked_out()
            except Exception:  # a busy or closing store: the next look will do
                log.debug("looking for new checkouts failed", exc_info=True)

    def start(self) -> None:
        """Adopt (if not yet), then start the prefetch, sync and connectivity threads, and the
        look every CHECKOUT_WATCH_S for clips checked out in another terminal."""
        if self._started:
            return
        self._started = True
        self.adopt()
        threading.Thread(
            target=self._watch_checkouts, name="annotator-checkouts", daemon=True
        ).start()
        if not self.prefetcher.started:
            self.prefetcher.start()
        if self.sync is not None:
            self.sync.start()
        self.connectivity.start()

    def acknowledged(self, clip_id: str) -> None:
        """The sync engine's `on_acknowledged` (its thread): the server has this clip's work."""
        if clip_id in self._escalations:
            self._delivered[clip_id] = datetime.now(UTC).astimezone()

    # ------------------------------------------------------------------ the bench

    def next(self) -> Shown | Waiting | None:
        """Put the next ready clip on the bench. None while amending (the bench is taken)."""
        if self.amending is not None:
            return None
        clip = self.prefetcher.take()
        if clip is None:
            self.current = None
            self.clip_clock = None
            self.prefetcher.request()
            return Waiting(self.prefetcher.status.message or "waiting for the next clip…")
        return self._bench(clip, self.session.clip_shown())

    def _bench(self, clip: ReadyClip, clock: ClipClock) -> Shown:
        self.current = clip
        self.clip_clock = clock
        if clip.audio is not None:
            clock.played()
        return Shown(clip, self.store.load_draft(clip.lease_id))

    def remember_shown(self, lease_id: str) -> None:
        """Crash bookkeeping: reopen on this clip after kill -9 (deferred past the first frame)."""
        if self.current is not None and self.current.lease_id == lease_id:
            self.store.remember_current(self.current.lease)

    def activity(self) -> None:
        if self.clip_clock is not None:
            self.clip_clock.activity()

    def played(self) -> None:
        if self.clip_clock is not None:
            self.clip_clock.played()

    def save_draft(self, form: Form) -> None:
        if self.current is None or self.amending is not None:
            return
        lease = self.current.lease
        pristine = (
            form.transcript == (lease.clip.asr_hint or "")
            and form.intent is None
            and not form.flags
            and not (form.note or "").strip()
        )
        if pristine:
            # Nothing done on it yet: no draft, so quit may give the clip back.
            if self.store.load_draft(lease.lease_id) is not None:
                self.store.delete_draft(lease.lease_id)
            return
        self.store.save_draft(
            Draft(
                lease_id=lease.lease_id,
                clip_id=lease.clip.clip_id,
                transcript=form.transcript,
                intent=form.intent,
                flags=tuple(sorted(form.flags)),
                note=form.note or None,
                cursor=form.cursor,
            )
        )

    def problems(self, form: Form) -> list[tuple[str, str, str]]:
        """What submit would refuse in `form` now (nothing is saved)."""
        return self._problems(form)

    def _problems(self, form: Form) -> list[tuple[str, str, str]]:
        assert self.index is not None
        return self.index.check_annotation(
            transcript=form.transcript,
            intent=form.intent,
            flags=sorted(form.flags),
            note=(form.note or "").strip() or None,
        )

    def submit(self, form: Form) -> Submitted | Amended | Invalid | Refused:
        """Make the form durable in the outbox (or amend, while amending). Does not advance:
        the screen calls `next()` (after the wellbeing notice, for an escalation)."""
        if self.amending is not None:
            return self.amend(form)
        clip = self.current
        if clip is None:
            return Refused("No clip on screen yet.")
        problems = self._problems(form)
        if problems:
            return Invalid(problems)
        assert form.intent is not None
        lease = clip.lease
        flags = sorted(form.flags)
        annotation = AnnotationIn(
            lease_id=lease.lease_id,
            fence=lease.fence,
            transcript=form.transcript,
            intent=form.intent,
            flags=flags,
            note=(form.note or "").strip() or None,
            timings=self.clip_clock.timings() if self.clip_clock is not None else None,
        )
        try:
            item = self.store.submit(annotation, clip_id=lease.clip.clip_id)
        except AlreadySubmitted as e:
            return Refused(str(e))
        self.prefetcher.finish(clip.lease_id)
        if self.clip_clock is not None:
            self.session.clip_done(self.clip_clock)
        self.previous = clip
        self.current = None
        self.clip_clock = None
        assert self.index is not None
        escalated = tuple(sorted(set(flags) & self.index.escalation_flags))
        if escalated:
            self._escalations[lease.clip.clip_id] = escalated
        return Submitted(item.key, lease.clip.clip_id, form.intent, escalated)

    def after_submit(self) -> None:
        """Deferred past the next clip's first frame: the sync thread takes the store's lock."""
        if self.sync is not None:
            self.sync.wake()

    def escalation(self, clip_id: str) -> Escalation:
        """Where the escalation submitted on this clip is: queued, or delivered and when."""
        return Escalation(
            self._escalations.get(clip_id, ()),
            self._delivered.get(clip_id),
            self.store.outbox_count(),
            online=self.sync is not None and self.connectivity.state.online,
        )

    def skip(self, reason: ReleaseReason, detail: str | None = None) -> Skipped | Refused:
        clip = self.current
        if clip is None:
            return Refused("No clip on screen yet.")
        self.prefetcher.release(clip.lease_id, reason, detail)
        self.store.forget_lease(clip.lease_id)
        self.current = None
        self.clip_clock = None
        return Skipped(clip.lease_id)

    def amendable(self, limit: int = AMENDABLE_LISTED) -> list[HistoryItem]:
        """Submissions that may still be reopened, newest first: inside the server's amend
        window (or not yet acknowledged) and neither in conflict nor rejected."""
        now = datetime.now(UTC)
        return [
            item
            for item in self.store.history(limit)
            if not (item.amend_until and datetime.fromisoformat(item.amend_until) <= now)
            and item.state not in (OutboxState.CONFLICT, OutboxState.REJECTED)
        ]

    def undo(self, key: str | None = None) -> Reopened | Refused:
        """Reopen the last submission, or the one with this history `key` (see `amendable`)."""
        if self.amending is not None:
            return Refused("Already amending: submit (or skip to cancel) first.", "information")
        history = self.store.history(1 if key is None else AMENDABLE_LISTED)
        if key is not None:
            history = [h for h in history if h.key == key]
        if not history:
            gone = "Nothing to undo yet." if key is None else "That submission is gone."
            return Refused(gone, "information")
        item = history[0]
        if item.amend_until and datetime.fromisoformat(item.amend_until) <= datetime.now(UTC):
            return Refused("Too late to amend: the server's amend window has closed.")
        if item.state in (OutboxState.CONFLICT, OutboxState.REJECTED):
            return Refused(f"That submission is {item.state.value}; it cannot be amended.")
        self.amending = _Amending(item.key, self.current, self.clip_clock)
        previous = self.previous
        if previous is not None and previous.lease_id != item.lease_id:
            previous = None
        self.current = None
        self.clip_clock = ClipClock(self._clock)
        return Reopened(item, previous)

    def amend(self, form: Form) -> Amended | Invalid | Refused:
        amending = self.amending
        if amending is None:
            return Refused("Nothing is reopened to amend.")
        item = next((h for h in self.store.history(50) if h.key == amending.item_key), None)
        if item is None:
            return Refused("That submission is no longer in the local history.", "error")
        problems = self._problems(form)
        if problems:
            return Invalid(problems)
        # Lease, fence and timings stay those of the original submission (the store enforces it).
        annotation = item.annotation.model_copy(
            update={
                "transcript": form.transcript,
                "intent": form.intent,
                "flags": sorted(form.flags),
                "note": (form.note or "").strip() or None,
            }
        )
        try:
            self.store.amend(item.key, annotation)
        except AmendError as e:
            return Refused(str(e), "error")
        if self.sync is not None:
            self.sync.wake()
        return Amended(item.key)

    def end_amendment(self) -> Shown | Waiting | None:
        """Leave the reopened submission: the parked clip comes back (its clock kept)."""
        amending, self.amending = self.amending, None
        if amending is None:
            return None
        if amending.parked is not None:
            clock = amending.parked_clock or ClipClock(self._clock)
            self.current, self.clip_clock = amending.parked, clock
            return Shown(amending.parked, self.store.load_draft(amending.parked.lease_id))
        return self.next()

    # ------------------------------------------------------------------ news from the threads

    def queue_news(self) -> QueueNews:
        """Drain what the prefetch thread noted (lost leases, damaged offline copies)."""
        p = self.prefetcher
        current_lost = False
        lost: list[str] = []
        while p.lost:
            lease_id = p.lost.popleft()
            lost.append(lease_id)
            current_lost = current_lost or (
                self.current is not None and self.current.lease_id == lease_id
            )
        damaged_q = getattr(p, "damaged", None)
        damaged: list[str] = []
        while damaged_q:
            damaged.append(damaged_q.popleft())
        return QueueNews(p.status, current_lost, tuple(damaged))

    # ------------------------------------------------------------------ figures for the screen

    def frequent_intents(self, limit: int = 6) -> list[str]:
        """The intents this annotator used most in the local history (the last shift or two:
        the store keeps `history_keep_s`), most used first; ties go to the more recent."""
        counts: Counter[str] = Counter()
        for item in self.store.history(FREQUENT_FROM):
            counts[item.annotation.intent] += 1
        # Counter.most_common keeps first-seen order among equals: history is newest first.
        return [intent for intent, _ in counts.most_common(limit)]

    @property
    def ready(self) -> int:
        return self.prefetcher.status.ready

    @property
    def outbox(self) -> int:
        return self.store.outbox_count()

    @property
    def conflicts(self) -> int:
        return self.store.conflict_count()

    @property
    def rejected(self) -> int:
        return self.store.counts()["rejected"]

    @property
    def waiting_message(self) -> str:
        status = self.prefetcher.status
        if status.state is PrefetchState.EMPTY:
            return "the queue is empty — waiting for new clips…"
        return status.message or "waiting for the next clip…"

    # ------------------------------------------------------------------ offline work

    def checkout(
        self, count: int, progress: Callable[[int, int], None] | None = None
    ) -> CheckoutResult:
        """Blocking (a worker thread): lease and cache `count` clips, then queue them here."""
        if self.client_factory is None or self.cache is None:
            result = CheckoutResult(asked=count)
            result.error = ApiError("offline checkout needs a server and the clip cache")
            return result
        result = checkout(self.client_factory, self.cache, self.store, count, progress=progress)
        if result.leases:
            self.store.claim_leases([le.lease_id for le in result.leases], self.session_id)
            self.prefetcher.adopt(result.leases)
        return result

    # ------------------------------------------------------------------ quit

    def close(self) -> QuitSummary:
        """Stop the threads; give back prefetched leases that hold no draft; keep the rest.

        Checked-out leases stay for offline work. A lease whose release does not reach the
        server stays recorded (the next session adopts it) and expires there on its own."""
        if self._closed is not None:
            return self._closed
        self._watch_stop.set()
        on_bench = [c.lease for c in (self.current, self._parked()) if c is not None]
        unused = self.prefetcher.close(release_unused=False) or []
        self.connectivity.stop()
        records = {r.lease_id: r for r in self.store.lease_records()}
        released = 0
        drafts: list[datetime] = []
        checkout_kept = 0
        to_release: list[Lease] = []
        for lease in [*on_bench, *unused]:
            record = records.get(lease.lease_id)
            if record is not None and record.origin is LeaseOrigin.CHECKOUT:
                checkout_kept += 1
            elif record is not None and record.has_draft:
                drafts.append(lease.expires_at)
            else:
                to_release.append(lease)
        unreleased: list[datetime] = []
        if to_release:
            gone = (
                release_leases(
                    self.client_factory, to_release, "quit", timeout=QUIT_RELEASE_TIMEOUT_S
                )
                if self.client_factory is not None
                else set()
            )
            released = len(gone)
            self.store.forget_leases(gone)
            unreleased = [le.expires_at for le in to_release if le.lease_id not in gone]
        self._closed = QuitSummary(released, tuple(drafts), checkout_kept, tuple(unreleased))
        return self._closed

    def _parked(self) -> ReadyClip | None:
        return self.amending.parked if self.amending is not None else None
