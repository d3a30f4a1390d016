"""`annotator checkout`, `annotator sync` and `annotator purge`: offline work from the shell.

Each takes the argparse Namespace from annotator/cli.py and returns an exit code:
0 done; 1 finished but with something to look at (rejected, conflicts, nothing leased, refused or
aborted purge); 2 configuration problem (no server or token, bad token); 3 server unreachable
(the outbox keeps everything for the next try).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import stamina
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
from api.models import MAX_LEASE_COUNT, MAX_TTL_SECONDS, Lease, ReleaseReason
from api.text_safety import escaping_console, for_terminal

EXIT_OK, EXIT_ATTENTION, EXIT_CONFIG, EXIT_OFFLINE = 0, 1, 2, 3
DOWNLOAD_THREADS = 4
T = TypeVar("T")

# Messages quote servers, exceptions and paths: escaped, so none of them can drive the terminal.
out = escaping_console(highlight=False)
err = escaping_console(stderr=True, highlight=False)


@dataclass(frozen=True, slots=True)
class _Connection:
    server: str
    token: str
    verify: bool | str
    insecure: bool


class _ConfigError(Exception):
    pass


def _connection(args: argparse.Namespace) -> _Connection:
    """Server and token from flags, ANNOTATOR_* env and config.toml (annotator.config)."""
    from annotator.config import ConfigError, load_settings

    try:
        s = load_settings(args)
    except ConfigError as e:
        raise _ConfigError(str(e)) from None
    token = s.token.get_secret_value() if s.token is not None else ""
    server, ca, insecure = s.server, s.ca_bundle, bool(s.insecure)
    if not server:
        raise _ConfigError("no server configured: set ANNOTATOR_SERVER or pass --server URL")
    if not token:
        raise _ConfigError("no token configured: set ANNOTATOR_TOKEN (preferred) or pass --token")
    return _Connection(str(server), str(token), str(ca) if ca else True, insecure)


def _client_factory(conn: _Connection) -> Callable[[], QueueClient]:
    def make() -> QueueClient:
        return QueueClient(conn.server, conn.token, verify=conn.verify, insecure=conn.insecure)

    return make


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


class _BadAudio(Exception):
    pass


def checkout(args: argparse.Namespace) -> int:
    return _guarded(lambda: _checkout(args))


def _checkout(args: argparse.Namespace) -> int:
    wanted = int(getattr(args, "count", 0) or 0)
    if wanted < 1:
        raise _ConfigError("--count must be at least 1")
    conn = _connection(args)
    store, cache = _open_store(), ClipCache.open_default()
    client = _client_factory(conn)()
    got: list[Lease] = []
    broken: list[str] = []
    try:
        with (
            Progress(
                TextColumn("checking out"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress,
            ThreadPoolExecutor(DOWNLOAD_THREADS) as pool,
        ):
            task = progress.add_task("clips", total=wanted)
            while len(got) + len(broken) < wanted:
                n = min(MAX_LEASE_COUNT, wanted - len(got) - len(broken))
                leases = _lease(client, n)
                if not leases:
                    break
                for lease, outcome in zip(
                    leases, pool.map(lambda le: _download(client, le), leases), strict=True
                ):
                    if isinstance(outcome, bytes):
                        # Audio first, then the lease: a crash between leaves an orphan entry the
                        # sync engine prunes, never a lease whose audio is missing.
                        cache.put(lease.clip.clip_id, outcome)
                        store.remember_lease(lease)
                        got.append(lease)
                    else:
                        broken.append(f"{lease.clip.clip_id}: {outcome}")
                        _release_quietly(client, lease)
                    progress.advance(task)
    except ApiError as e:
        code = _api_exit(e)
        if got:
            err.print(f"{len(got)} clips were checked out before that and are ready offline.")
        return code
    finally:
        client.close()
        store.close()
    _checkout_summary(got, broken, wanted, cache)
    return EXIT_OK if got and not broken else EXIT_ATTENTION


def _retrying(call: Callable[[], T]) -> T:
    for attempt in stamina.retry_context(
        on=(OfflineError, ServerError), attempts=4, wait_initial=0.5, wait_max=5.0
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable")  # pragma: no cover


def _lease(client: QueueClient, count: int) -> list[Lease]:
    return _retrying(lambda: client.lease(count, MAX_TTL_SECONDS)).leases


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


def _checkout_summary(got: list[Lease], broken: list[str], wanted: int, cache: ClipCache) -> None:
    for line in broken:
        err.print(f"[yellow]skipped[/] {line}")
    if not got:
        out.print("nothing checked out: the queue has no clips for you right now")
        return
    first = min(le.expires_at for le in got).astimezone()
    size = sum((cache.dir / f"{le.clip.clip_id}.clip").stat().st_size for le in got)
    out.print(
        f"checked out {len(got)} clip{'s' * (len(got) != 1)} for offline work "
        f"({size / 1e6:.1f} MB encrypted); leases expire from {first:%Y-%m-%d %H:%M}"
    )
    if len(got) + len(broken) < wanted:
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
    conn = _connection(args)
    with _open_store() as store:
        cache_dir = default_dir()
        cache = ClipCache.open_default() if cache_dir.is_dir() else None
        engine = SyncEngine(store, _client_factory(conn), cache=cache, batch_size=500)
        before = store.outbox_count()
        started = time.monotonic()
        try:
            summary = engine.flush(timeout=600)
        finally:
            engine.stop()
        took = time.monotonic() - started
    if before == 0 and summary.requests == 0:
        out.print("nothing to send: the outbox is empty")
        return EXIT_OK
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
    return EXIT_ATTENTION if summary.rejected or summary.conflicts else EXIT_OK


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
        ClipCache.wipe(cache_dir)
        store.purge()
    out.print(f"purged {what}")
    return EXIT_OK
