"""A headless annotator for the chaos run: the client's own engine, no Textual.

    ANNOTATOR_HOME=DIR python -m tests.chaos.client_driver --server URL --token T --seed S
    ANNOTATOR_HOME=DIR python -m tests.chaos.client_driver --server URL --token T --flush-only

It does what the TUI does around the network, with the same objects: a `Prefetcher` leases,
downloads and decodes clips in its thread (adopting the leases the store still holds after a
crash, the one on screen first); the main thread plays the UI thread — it remembers the clip on
screen, "types" by saving drafts, submits through `LocalStore.submit` (the durable outbox) and
pokes the `SyncEngine`, which sends in its own thread. The store is the record of what was
submitted; the lines on stdout are promises the run script checks after a SIGKILL:

    READY <pid>
    SHOWN <lease> <clip> <words> <took>       remember_lease + set_current + load_draft returned,
                                              the draft held <words> words
    DRAFT <lease> <words> <took>              save_draft returned
    SUBMITTED <key> <clip> <lease> <escalated 0|1> <took>   submit returned: durable from here
    AMENDED <key> <took>                      amend of that submission returned: durable
    NETGUARD <where> <thread> <path>          a request on the UI thread or under the store lock
    LOCKHOLD <ms> <thread> <method>           a LocalStore method held its lock over 25 ms
    FLUSHED <pending> <conflicts> <rejected>  after SIGTERM (or --flush-only): the final flush

<took> is "<ms> <lock_ms> <cpu_ms>": how long that "keypress" held the UI thread, how much of it
queued for the store's lock, how much was this thread's own CPU.
Each is a call the TUI makes on its event loop, so each must stay far from the network.

SIGTERM means "the shift is over": stop annotating, release unshown clips, flush, exit 0 when the
outbox is empty. Network failures are never fatal here: the engine and the prefetcher retry.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Any, TypeVar

import httpx

from annotator.prefetch import Prefetcher, ReadyClip
from annotator.store import AmendError, Draft, LocalStore, OutboxItem
from annotator.sync import Backoff, SyncEngine
from api.client import QueueClient
from api.models import AnnotationIn, Lease, Timings

T = TypeVar("T")

#: Words the annotator "types"; lower-case plain words always pass the transcript lint.
WORDS = (
    "turn", "on", "the", "kitchen", "lights", "please", "set", "an", "alarm", "for", "seven",
    "play", "some", "jazz", "what", "is", "weather", "like", "tomorrow", "in", "paris",
)  # fmt: skip
INTENTS = ("iot_hue_lighton", "alarm_set", "play_music", "weather_query", "qa_factoid")
#: Client timeouts: short enough that a black-holed request is retried within the run.
CLIENT_TIMEOUT_S = 5.0
#: Lease lifetime asked of the server (its minimum is 30 s); the prefetcher renews at half-life.
LEASE_TTL_S = 60
PREFETCH_DEPTH = 2


#: Set while the main thread plays the UI thread; after SIGTERM it is the quit path, which may
#: send (as `annotator sync` does).
ANNOTATING = threading.Event()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Keypresses:
    """Times calls made on the UI thread, splitting off the wait for the store's lock.

    The store serialises its one SQLite connection with a re-entrant lock shared with the sync
    thread. Taking that lock first (re-entrant: the call then takes it again at once) measures
    how long the keypress queued behind the other thread; the rest is its own SQLite work and
    fsync. `NetworkGuard` proves the lock is never held across a request, so neither part can
    be a wait on the network.
    """

    def __init__(self, lock: AbstractContextManager[object]) -> None:
        self._lock = lock

    def timed(self, call: Callable[[], T]) -> tuple[T, str]:
        """(result, "<total ms> <ms waiting for the store's lock> <ms of this thread's CPU>").

        Total minus lock wait minus CPU is time blocked elsewhere: fsync, or the scheduler."""
        start, cpu = time.perf_counter(), time.thread_time()
        with self._lock:
            locked = time.perf_counter()
            result = call()
        end, cpu_end = time.perf_counter(), time.thread_time()
        ms = (end - start) * 1000.0
        return result, f"{ms:.2f} {(locked - start) * 1000.0:.2f} {(cpu_end - cpu) * 1000.0:.2f}"


class NetworkGuard(httpx.BaseTransport):
    """The clients' transport: forwards, and reports any request made on the UI thread or while
    the calling thread holds the store's lock — the two ways a keypress could wait on the network.
    """

    def __init__(self, lock: object) -> None:
        self.inner = httpx.HTTPTransport()
        # RLock._is_owned: "does the calling thread hold it" (the C RLock has it, privately).
        self._owned: Callable[[], bool] = getattr(lock, "_is_owned")  # noqa: B009

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        where = None
        if ANNOTATING.is_set() and threading.current_thread() is threading.main_thread():
            where = "ui_thread"
        elif self._owned():
            where = "under_store_lock"
        if where is not None:
            say(f"NETGUARD {where} {threading.current_thread().name} {request.url.path}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def store_lock(store: LocalStore) -> AbstractContextManager[object]:
    """The store's connection lock (private, but this is the harness that checks it)."""
    lock: AbstractContextManager[object] = getattr(store, "_lock")  # noqa: B009
    return lock


class HoldTimer:
    """Stands in for the store's RLock and reports any hold over `report_ms`, naming the
    LocalStore method that held it: a keypress queued behind the sync thread says which call."""

    def __init__(self, inner: Any, report_ms: float = 25.0) -> None:
        self._inner = inner
        self._report_ms = report_ms
        self._local = threading.local()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = bool(self._inner.acquire(blocking, timeout))
        if got:
            local = self._local
            depth = getattr(local, "depth", 0)
            if depth == 0:
                local.since = time.perf_counter()
                local.method = "?"
            if local.method == "?":
                local.method = _store_caller()
            local.depth = depth + 1
        return got

    def release(self) -> None:
        local = self._local
        local.depth -= 1
        if local.depth == 0:
            ms = (time.perf_counter() - local.since) * 1000.0
            if ms > self._report_ms:
                say(f"LOCKHOLD {ms:.2f} {threading.current_thread().name} {local.method}")
        self._inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return bool(self._inner._is_owned())


def _store_caller() -> str:
    """The outermost LocalStore method on the calling thread's stack."""
    frame: FrameType | None = sys._getframe(2)
    name = "?"
    while frame is not None:
        if frame.f_code.co_filename.endswith("store/db.py"):
            name = frame.f_code.co_name
        frame = frame.f_back
    return name


def show(store: LocalStore, lease: Lease) -> Draft | None:
    """What the annotate screen does once a clip is on screen: crash bookkeeping, its draft."""
    store.remember_lease(lease)
    store.set_current(lease.lease_id)
    return store.load_draft(lease.lease_id)


def submit(
    store: LocalStore,
    prefetcher: Prefetcher,
    engine: SyncEngine,
    annotation: AnnotationIn,
    clip: str,
) -> OutboxItem:
    """The submit key: durable in the outbox, lease done, sync thread poked; no network here."""
    item = store.submit(annotation, clip_id=clip)
    prefetcher.finish(annotation.lease_id)
    engine.wake()
    return item


def amend(store: LocalStore, engine: SyncEngine, key: str, annotation: AnnotationIn) -> None:
    """The amend key on the review list: durable at once, sent by the sync thread."""
    store.amend(key, annotation)
    engine.wake()


def build_annotation(
    clip: ReadyClip, words: list[str], rng: random.Random, distress_rate: float, shown: datetime
) -> AnnotationIn:
    escalate = rng.random() < distress_rate
    flags = ["distress"] if escalate else []
    if rng.random() < 0.1:
        flags.append("media_playback")
    note = f"chaos: raised voices, someone asks for help (clip {clip.lease.clip.clip_id})"
    return AnnotationIn(
        lease_id=clip.lease_id,
        fence=clip.lease.fence,
        transcript=" ".join(words),
        intent=rng.choice(INTENTS),
        flags=flags,
        note=note if escalate else None,
        timings=Timings(
            shown_at=shown,
            submitted_at=datetime.now(UTC),
            active_seconds=round((datetime.now(UTC) - shown).total_seconds(), 3),
            plays=1,
        ),
    )


def flush(engine: SyncEngine, store: LocalStore, timeout: float) -> int:
    """Send everything, retrying transient failures until the outbox is empty or time is up."""
    engine.stop(timeout=CLIENT_TIMEOUT_S + 1)
    deadline = time.monotonic() + timeout
    while store.outbox_count() and time.monotonic() < deadline:
        summary = engine.flush(timeout=max(0.1, deadline - time.monotonic()))
        if summary.error is not None and store.outbox_count():
            time.sleep(0.2)
    counts = store.counts()
    pending = counts["pending"]
    say(f"FLUSHED {pending} {counts['conflicts']} {counts['rejected']}")
    return pending


def annotate(
    store: LocalStore,
    prefetcher: Prefetcher,
    engine: SyncEngine,
    stop: threading.Event,
    rng: random.Random,
    args: argparse.Namespace,
) -> None:
    keys = Keypresses(store_lock(store))
    arrived = threading.Event()
    prefetcher.set_listener(arrived.set)
    ANNOTATING.set()
    try:
        _annotate_loop(store, prefetcher, engine, stop, rng, args, keys, arrived)
    finally:
        ANNOTATING.clear()


def _annotate_loop(
    store: LocalStore,
    prefetcher: Prefetcher,
    engine: SyncEngine,
    stop: threading.Event,
    rng: random.Random,
    args: argparse.Namespace,
    keys: Keypresses,
    arrived: threading.Event,
) -> None:
    previous: tuple[str, AnnotationIn] | None = None
    while not stop.is_set():
        clip = prefetcher.take()
        if clip is None:
            prefetcher.request()
            arrived.wait(0.25)
            arrived.clear()
            continue
        lease = clip.lease
        shown = datetime.now(UTC)
        draft, took = keys.timed(partial(show, store, lease))
        words = draft.transcript.split() if draft is not None else []
        say(f"SHOWN {lease.lease_id} {lease.clip.clip_id} {len(words)} {took}")
        if previous is not None and rng.random() < args.amend:
            # Undo/amend of the clip just done: sometimes still unsent (its queued body is
            # replaced), sometimes already acknowledged or in flight (a PATCH is queued).
            key, before = previous
            changed = before.model_copy(update={"transcript": before.transcript + " amended"})
            try:
                _, took = keys.timed(partial(amend, store, engine, key, changed))
                say(f"AMENDED {key} {took}")
            except AmendError as e:
                say(f"AMENDFAIL {key} {type(e).__name__}")
        previous = None
        target = rng.randint(3, 7)
        while len(words) < target and not stop.is_set():
            stop.wait(rng.uniform(*args.think_s))
            words.append(rng.choice(WORDS))
            text = " ".join(words)
            saved = Draft(lease.lease_id, lease.clip.clip_id, text, cursor=(0, len(text)))
            _, took = keys.timed(partial(store.save_draft, saved))
            say(f"DRAFT {lease.lease_id} {len(words)} {took}")
        if stop.is_set():
            break
        annotation = build_annotation(clip, words, rng, args.distress, shown)
        item, took = keys.timed(
            partial(submit, store, prefetcher, engine, annotation, lease.clip.clip_id)
        )
        escalated = int("distress" in annotation.flags)
        say(f"SUBMITTED {item.key} {item.clip_id} {item.lease_id} {escalated} {took}")
        previous = (item.key, annotation)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", required=True, help="the proxy's URL (loopback)")
    p.add_argument("--token", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distress", type=float, default=0.1, help="share of escalated annotations")
    p.add_argument("--amend", type=float, default=0.1, help="share of submissions amended")
    p.add_argument("--think-s", type=float, nargs=2, default=(0.02, 0.08), metavar=("MIN", "MAX"))
    p.add_argument("--ttl", type=int, default=LEASE_TTL_S, help="lease lifetime to ask for (s)")
    p.add_argument("--flush-only", action="store_true", help="send the outbox and exit")
    p.add_argument("--flush-timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)

    store = LocalStore.open()
    store._lock = HoldTimer(store_lock(store))  # type: ignore[assignment]

    def factory() -> QueueClient:
        # One transport per client: closing a client closes its transport.
        guard = NetworkGuard(store_lock(store))
        return QueueClient(args.server, args.token, timeout=CLIENT_TIMEOUT_S, transport=guard)

    # A shift of hours squeezed into minutes: the engine's backoff is squeezed the same way
    # (default 1 s doubling to 120 s would idle through most of a 30 s run).
    engine = SyncEngine(store, factory, backoff=Backoff(initial=0.2, cap=5.0, jitter=0.2))
    if args.flush_only:
        say(f"READY {os.getpid()}")
        pending = flush(engine, store, args.flush_timeout)
        store.close()
        return 0 if pending == 0 else 1

    rng = random.Random(args.seed)
    prefetcher = Prefetcher(factory, depth=PREFETCH_DEPTH, ttl_seconds=args.ttl)
    # As launch.run_tui does: the leases this store still holds (a crash) come first, the clip
    # that was on screen before them, so the annotator lands back on it with its draft.
    current = store.current_lease_id()
    leases = sorted(store.live_leases(datetime.now(UTC)), key=lambda le: le.lease_id != current)
    prefetcher.adopt(leases)
    prefetcher.start()
    engine.start()
    engine.wake()  # a restart after a crash resends whatever the outbox holds
    say(f"READY {os.getpid()}")
    try:
        annotate(store, prefetcher, engine, stop, rng, args)
    finally:
        prefetcher.close(release_unused=True, timeout=CLIENT_TIMEOUT_S)
    pending = flush(engine, store, args.flush_timeout)
    store.close()
    return 0 if pending == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
