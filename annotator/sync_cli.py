"""`annotator checkout`, `annotator sync` and `annotator purge`: offline work from the shell.

Each takes the argparse Namespace from annotator/cli.py and returns an exit code:
0 done; 1 finished but with something to look at (rejected, conflicts, nothing leased, refused or
aborted purge); 2 configuration problem (no server or token, bad token); 3 server unreachable
(the outbox keeps everything for the next try).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from annotator.store.cache import ClipCache, default_dir
from annotator.store.db import LocalStore
from annotator.store.recovery import StoreError
from annotator.sync import SyncEngine
from api.client import (
    ApiError,
    InsecureServerError,
    OfflineError,
    QueueClient,
    RequestRejected,
    ServerError,
    Unauthorized,
)
from api.models import Lease
from api.text_safety import escaping_console, for_terminal

EXIT_OK, EXIT_ATTENTION, EXIT_CONFIG, EXIT_OFFLINE = 0, 1, 2, 3
DOWNLOAD_THREADS = 4
T = TypeVar("T")

# Messages quote servers, exceptions and paths: escaped, so none of them can drive the terminal.
out = escaping_console(highlight=False)
err = escaping_console(stderr=True, highlight=False)


class _ConfigError(Exception):
    pass


def _client_factory(args: argparse.Namespace) -> Callable[[], QueueClient]:
    """The one settings → client step (annotator.workbench.clients), from flags, env, config."""
    from annotator.config import ConfigError, load_settings
    from annotator.workbench import NotConfigured, client_factory

    try:
        return client_factory(load_settings(args))
    except (ConfigError, NotConfigured) as e:
        raise _ConfigError(str(e)) from None


def _open_store() -> LocalStore:
    store = LocalStore.open()
    if store.recovery_message:
        err.print(f"[yellow]warning:[/] {store.recovery_message}")
    return store


def _api_exit(e: ApiError) -> int:
    if isinstance(e, OfflineError | ServerError):
        err.print(f"[red]server unavailable:[/] {e}")
        return EXIT_OFFLINE
    if isinstance(e, Unauthorized):
        err.print("[red]the server refused the token[/] (check ANNOTATOR_TOKEN or the config file)")
        return EXIT_CONFIG
    err.print(f"[red]error:[/] {e}")
    return EXIT_CONFIG if isinstance(e, InsecureServerError) else EXIT_ATTENTION


def _guarded(run: Callable[[], int]) -> int:
    """One place where expected failures become a message and an exit code, not a traceback."""
    try:
        return run()
    except _ConfigError as e:
        err.print(f"[red]{e}[/]")
        return EXIT_CONFIG
    except StoreError as e:
        err.print(f"[red]local store unavailable:[/] {e}")
        return EXIT_CONFIG
    except ApiError as e:
        return _api_exit(e)


# ---------------------------------------------------------------------- checkout


def checkout(args: argparse.Namespace) -> int:
    return _guarded(lambda: _checkout(args))


def _checkout(args: argparse.Namespace) -> int:
    from annotator.workbench import checkout as checkout_clips

    wanted = int(getattr(args, "count", 0) or 0)
    if wanted < 1:
        raise _ConfigError("--count must be at least 1")
    factory = _client_factory(args)
    store, cache = _open_store(), ClipCache.open_default()
    try:
        with Progress(
            TextColumn("checking out"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("clips", total=wanted)
            result = checkout_clips(
                factory,
                cache,
                store,
                wanted,
                progress=lambda done, _total: progress.update(task, completed=done),
            )
    finally:
        store.close()
    if isinstance(result.error, RequestRejected) and result.error.reason == "lease_cap":
        # Not a failure of the run: the server's per-person cap. Say so, with what it got.
        err.print(f"[yellow]the server stopped the checkout:[/] {result.error.error.message}")
        _checkout_summary(result.leases, result.broken, wanted, cache, capped=True)
        return EXIT_ATTENTION
    if result.error is not None:
        code = _api_exit(result.error)
        if result.leases:
            n = len(result.leases)
            err.print(f"{n} clips were checked out before that and are ready offline.")
        return code
    _checkout_summary(result.leases, result.broken, wanted, cache)
    return EXIT_OK if result.leases and not result.broken else EXIT_ATTENTION


def _checkout_summary(
    got: list[Lease], broken: list[str], wanted: int, cache: ClipCache, *, capped: bool = False
) -> None:
    for line in broken:
        err.print(f"[yellow]skipped[/] {line}")
    if capped:
        out.print(
            f"checked out {len(got)} of the {wanted} clips asked for: you hold as many live"
            " leases as the server allows one person"
        )
    if not got:
        if not capped:
            out.print("nothing checked out: the queue has no clips for you right now")
        return
    first = min(le.expires_at for le in got).astimezone()
    size = sum((cache.dir / f"{le.clip.clip_id}.clip").stat().st_size for le in got)
    out.print(
        f"checked out {len(got)} clip{'s' * (len(got) != 1)} for offline work "
        f"({size / 1e6:.1f} MB encrypted); leases expire from {first:%Y-%m-%d %H:%M}"
    )
    if len(got) + len(broken) < wanted and not capped:
        out.print(f"the queue had only {len(got) + len(broken)} of the {wanted} clips asked for")


# ---------------------------------------------------------------------- sync


def sync(args: argparse.Namespace) -> int:
    return _guarded(lambda: _sync(args))


def _sync(args: argparse.Namespace) -> int:
    export = getattr(args, "conflicts_jsonl", None)
    if getattr(args, "status", False) or export:
        with _open_store() as store:
            if export:
                try:
                    n = store.export_conflicts_jsonl(Path(export))
                except OSError as e:  # PrivateFileError names the path and the fix
                    err.print(f"[red]--conflicts-jsonl:[/] {escape(for_terminal(e))}")
                    return EXIT_CONFIG
                shown = escape(for_terminal(export))
                out.print(f"wrote {n} conflict{'s' * (n != 1)} to {shown}")
            if getattr(args, "status", False):
                _print_status(store)
        return EXIT_OK
    factory = _client_factory(args)
    with _open_store() as store:
        cache_dir = default_dir()
        cache = ClipCache.open_default() if cache_dir.is_dir() else None
        engine = SyncEngine(store, factory, cache=cache, batch_size=500)
        before = store.outbox_count()
        started = time.monotonic()
        try:
            summary = engine.flush(timeout=600)
        finally:
            engine.stop()
        took = time.monotonic() - started
    if before == 0 and summary.requests == 0:
        out.print("nothing to send: the outbox is empty")
        return _release_unstarted(factory) if getattr(args, "release", False) else EXIT_OK
    out.print(
        f"sent {summary.sent}: {summary.accepted} accepted, {summary.late} late"
        + (f", {summary.amended} amendments" if summary.amended else "")
        + f" ({summary.requests} request{'s' * (summary.requests != 1)}, {took:.1f} s)"
    )
    if summary.rejected:
        out.print(
            f"[red]rejected {summary.rejected}[/] (kept; `annotator sync --status` lists why)"
        )
    if summary.conflicts:
        out.print(
            f"[yellow]conflicts {summary.conflicts}[/]: someone else completed those clips "
            "(kept; export with `annotator sync --conflicts-jsonl FILE`)"
        )
    if summary.pending:
        out.print(f"[yellow]{summary.pending} still waiting[/]: {summary.error or 'not sent yet'}")
        return EXIT_OFFLINE
    code = EXIT_ATTENTION if summary.rejected or summary.conflicts else EXIT_OK
    if getattr(args, "release", False):
        return max(code, _release_unstarted(factory))
    return code


def _release_unstarted(factory: Callable[..., QueueClient]) -> int:
    """`sync --release`: give back every live lease without a draft; keep those with one, and
    those a running annotator session holds."""
    from annotator.workbench.checkout import release_leases
    from annotator.workbench.sitting import session_alive

    with _open_store() as store:
        records = [
            r for r in store.lease_records() if r.session is None or not session_alive(r.session)
        ]
        idle = [r.lease for r in records if not r.has_draft]
        drafted = len(records) - len(idle)
        gone = release_leases(factory, idle, "sync --release") if idle else set()
        clip_ids = store.forget_leases(gone)
    cache_dir = default_dir()
    if clip_ids and cache_dir.is_dir():
        cache = ClipCache.open_default()
        for clip_id in clip_ids:
            cache.delete(clip_id)
    if idle or drafted:
        out.print(
            f"released {len(gone)} clip{'s' * (len(gone) != 1)}"
            + (
                f"; kept {drafted} with a draft (finish or skip them in annotator)"
                if drafted
                else ""
            )
        )
    else:
        out.print("no leases to release")
    if len(gone) < len(idle):
        err.print(f"[yellow]{len(idle) - len(gone)} could not be released[/] (server unreachable)")
        return EXIT_OFFLINE
    return EXIT_OK


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _print_status(store: LocalStore) -> None:
    counts = store.counts()
    summary = Table(title="local work", show_header=False)
    for name in ("pending", "rejected", "conflicts", "drafts", "leases", "history"):
        summary.add_row(name, str(counts[name]))
    cache_dir = default_dir()
    entries = len(list(cache_dir.glob("*.clip"))) if cache_dir.is_dir() else 0
    size = sum(p.stat().st_size for p in cache_dir.glob("*.clip")) if cache_dir.is_dir() else 0
    summary.add_row("cached clips", f"{entries} ({size / 1e6:.1f} MB encrypted, {cache_dir})")
    out.print(summary)

    items = store.outbox(limit=50)
    if items:
        t = Table(title=f"outbox (first {len(items)})")
        for col in ("key", "clip", "kind", "state", "attempts", "next try / reason"):
            t.add_column(col)
        for it in items:
            if it.state == "rejected":
                detail = f"{it.status_code} {it.reason}: {it.last_error}"
            else:
                detail = _when(it.next_attempt_at) + (
                    f" ({it.last_error})" if it.last_error else ""
                )
            t.add_row(it.key[:12], it.clip_id, it.kind, it.state, str(it.attempts), detail)
        out.print(t)
    conflicts = store.conflicts()
    if conflicts:
        t = Table(title="conflicts")
        for col in ("key", "clip", "reason", "when"):
            t.add_column(col)
        for c in conflicts:
            t.add_row(c.key[:12], c.clip_id, c.reason, _when(c.at))
        out.print(t)


# ---------------------------------------------------------------------- purge


def purge(args: argparse.Namespace) -> int:
    return _guarded(lambda: _purge(args))


def _purge(args: argparse.Namespace) -> int:
    from annotator.profile_lock import ProfileInUse, ProfileLock

    try:
        # Held while purging: no annotator starts on what is being deleted.
        lock = ProfileLock.acquire()
    except ProfileInUse as e:
        # It works from the cache and the drafts this would delete, and writes more as it goes.
        err.print(
            f"[red]refusing to purge:[/] an annotator is open on this profile"
            f" ({e.holder.describe()}). Quit it (ctrl+q) first, then purge."
        )
        return EXIT_ATTENTION
    with lock:
        return _purge_locked(args)


def _purge_locked(args: argparse.Namespace) -> int:
    with _open_store() as store:
        counts = store.counts()
        unsynced = store.unsynced_count()
        cache_dir = default_dir()
        clips = len(list(cache_dir.glob("*.clip"))) if cache_dir.is_dir() else 0
        if unsynced and not getattr(args, "force", False):
            err.print(
                f"[red]refusing to purge:[/] {unsynced} annotation(s) are not on the server "
                f"({counts['pending']} waiting, {counts['rejected']} rejected, "
                f"{counts['conflicts']} in conflict). Run `annotator sync` (and export conflicts "
                "with --conflicts-jsonl), or pass --force to throw them away."
            )
            return EXIT_ATTENTION
        aside = len(store.aside_copies())
        what = (
            f"{clips} cached clips, {counts['drafts']} drafts, {counts['pending']} unsent and "
            f"{counts['history']} past submissions, {counts['conflicts']} conflicts"
            + (f", {aside} damaged database file(s) set aside" if aside else "")
        )
        if not getattr(args, "yes", False):
            err.print(f"This deletes {what}. Type 'yes' to continue: ", end="")
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                err.print("aborted; nothing deleted")
                return EXIT_ATTENTION
        released = _give_back(args, store)
        ClipCache.wipe(cache_dir)
        store.purge()
    out.print(f"purged {what}")
    if released:
        out.print(released)
    return EXIT_OK


def _give_back(args: argparse.Namespace, store: LocalStore) -> str:
    """The leases a purge forgets go back to the server first: left there, their clips stay
    held (up to the checkout's 8 h) where nobody else can annotate them."""
    from annotator.workbench.checkout import release_leases

    leases = [r.lease for r in store.lease_records()]
    if not leases:
        return ""
    try:
        gone = release_leases(_client_factory(args), leases, "purge")
    except _ConfigError:
        gone = set()
    text = f"released {len(gone)} clip{'s' * (len(gone) != 1)}"
    if len(gone) < len(leases):
        text += (
            f"; {len(leases) - len(gone)} could not be released (server unreachable or not "
            "configured): they stay leased to you until they expire"
        )
    return text
