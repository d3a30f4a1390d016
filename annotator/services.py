"""What `annotator` assembles before the App starts: `Services` and `build_services(args)`.

No Textual here (the App and the screens import this module, never the other way round). Heavy
modules are imported inside `build_services`: the client's cold start to the first audible clip is
budgeted at one second, and prefetching starts before the taxonomy, the audio device and Textual.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from annotator.audio.player import Player
    from annotator.config import Settings
    from annotator.keymap import ResolvedKeymap
    from annotator.prefetch import ClipSource
    from annotator.profile_lock import ProfileLock
    from annotator.store.cache import ClipCache
    from annotator.store.db import LocalStore
    from annotator.sync import SyncEngine
    from annotator.workbench import Connectivity, Workbench
    from annotator.workbench.outcomes import QuitSummary
    from api.client import QueueClient, Unauthorized
    from api.models import Taxonomy

log = logging.getLogger(__name__)


class LaunchError(Exception):
    """A message for the person at the terminal; the process exits with status 2."""


class EventRelay:
    """A callback that can be built before its listener exists and pointed at it later.

    The prefetcher, the sync engine and the connectivity owner call it from their own threads;
    the screen installs a target that posts a typed message (thread-safe)."""

    def __init__(self) -> None:
        self.target: Callable[..., None] | None = None

    def __call__(self, *args: Any) -> None:
        target = self.target
        if target is not None:
            target(*args)


@dataclass
class Services:
    """What launch assembles and the screens use; tests build one from real parts and fakes."""

    settings: Settings
    keymap: ResolvedKeymap
    taxonomy: Taxonomy
    client_factory: Callable[..., QueueClient] | None
    player: Player
    player_reason: str
    store: LocalStore
    prefetcher: ClipSource
    sync: SyncEngine | None = None
    #: The encrypted clip cache (offline checkout); None in tests that do not need it.
    cache: ClipCache | None = None
    prefetch_events: EventRelay = field(default_factory=EventRelay)
    sync_events: EventRelay = field(default_factory=EventRelay)
    link_events: EventRelay = field(default_factory=EventRelay)
    #: Monotonic seconds, for the pace figures (tests freeze it so snapshots do not drift).
    clock: Callable[[], float] = time.monotonic
    #: Shown once at start (e.g. the store moved a corrupt file aside).
    startup_notices: list[str] = field(default_factory=list)
    connectivity: Connectivity | None = None
    workbench: Workbench = field(default=None)  # type: ignore[assignment]  # built in post_init
    #: What quitting did with the leases (set by `shutdown`), printed after the App exits.
    quit_summary: QuitSummary | None = None
    #: This process's hold on the profile (`build_services` takes it; released at shutdown).
    profile_lock: ProfileLock | None = None
    _started: bool = False

    def __post_init__(self) -> None:
        from annotator.session import Session
        from annotator.workbench import Connectivity, Workbench
        from api.taxonomy import TaxonomyIndex

        if self.connectivity is None:
            self.connectivity = Connectivity(None)
        if cast("Workbench | None", self.workbench) is None:
            self.workbench = Workbench(
                store=self.store,
                prefetcher=self.prefetcher,
                index=TaxonomyIndex(self.taxonomy),
                session=Session(
                    daily_target=self.settings.daily_target,
                    shift_hours=self.settings.shift_hours,
                    now=self.clock,
                ),
                clock=self.clock,
                sync=self.sync,
                connectivity=self.connectivity,
                cache=self.cache,
                client_factory=self.client_factory,
            )
        self.connectivity.add_listener(self.link_events)

    def start(self) -> None:
        """Start the background threads; leases this client held before come first."""
        if self._started:
            return
        self._started = True
        self.prefetcher.set_listener(self.prefetch_events)
        self.workbench.start()

    def shutdown(self) -> QuitSummary | None:
        """Give back what is not kept, stop the threads, close the device and the store."""
        sync = self.sync

        def close_bench() -> None:
            self.quit_summary = self.workbench.close()

        steps: list[tuple[str, Callable[[], object]]] = [
            ("workbench", close_bench),
            ("sync", sync.stop if sync is not None else lambda: None),
            ("player", self.player.close),
            ("store", self.store.close),
            ("profile lock", self.profile_lock.release if self.profile_lock else lambda: None),
        ]
        for what, step in steps:
            try:
                step()
            except Exception:  # one failing part must not keep the others open
                log.warning("shutdown: closing the %s failed", what, exc_info=True)
        return self.quit_summary


def load_settings_or_fail(args: argparse.Namespace) -> Settings:
    from annotator.config import ConfigError, load_settings

    try:
        return load_settings(args)
    except ConfigError as e:
        raise LaunchError(str(e)) from None


def connect(
    args: argparse.Namespace,
) -> tuple[Settings, ResolvedKeymap, Callable[..., QueueClient]]:
    """The settings, the keymap and the client factory, or a LaunchError saying what to fix
    (the annotator's and the supervisor's console's first step)."""
    from annotator.keymap import KeymapError, load_keymap
    from annotator.workbench import NotConfigured, client_factory
    from api.client import InsecureServerError

    settings = load_settings_or_fail(args)
    try:
        keymap = load_keymap(settings.keymap, settings.keys, overrides_source=settings.keys_source)
    except KeymapError as e:
        raise LaunchError(str(e)) from None
    try:
        factory = client_factory(settings)
    except (NotConfigured, InsecureServerError) as e:
        raise LaunchError(str(e)) from None
    return settings, keymap, factory


def open_configured_player(settings: Settings) -> tuple[Player, str]:
    """The player `--audio` / the relay settings ask for, and the status bar's reason."""
    from annotator.audio.backends import open_player

    secret = settings.relay_secret
    return open_player(
        settings.audio,
        relay=settings.relay,
        relay_secret=secret.get_secret_value() if secret is not None else None,
    )


def build_services(args: argparse.Namespace) -> Services:
    """Everything the App needs, or a LaunchError saying what to fix (one is that another
    annotator holds this profile: `annotator.profile_lock`)."""
    settings, keymap, factory = connect(args)
    from annotator.profile_lock import ProfileInUse, ProfileLock

    try:
        lock = ProfileLock.acquire()
    except ProfileInUse as e:
        raise LaunchError(str(e)) from None
    except OSError as e:
        raise LaunchError(f"cannot lock this profile's data directory: {e}") from None
    try:
        services = _build_services(settings, keymap, factory)
    except BaseException:
        lock.release()
        raise
    services.profile_lock = lock
    return services


def _build_services(
    settings: Settings, keymap: ResolvedKeymap, factory: Callable[..., QueueClient]
) -> Services:
    from annotator.prefetch import Prefetcher
    from annotator.session import Session
    from annotator.store.cache import ClipCache
    from annotator.store.db import LocalStore
    from annotator.store.recovery import StoreError
    from annotator.workbench import Connectivity, Workbench
    from annotator.workbench.connectivity import PROBE_TIMEOUT_S

    try:
        store = LocalStore.open(history_keep_s=settings.history_hours * 3600)
    except StoreError as e:
        raise LaunchError(str(e)) from None
    connectivity = Connectivity(_HealthProbe(factory, PROBE_TIMEOUT_S))
    cache: list[ClipCache] = []  # opened below; the prefetch thread only reads it later
    leased = EventRelay()
    bench: list[Workbench] = []  # built just below; the prefetch thread asks it only later
    prefetcher = Prefetcher(
        factory,
        depth=settings.prefetch,
        ttl_seconds=settings.lease_ttl_s,
        local_audio=lambda clip_id: cache[0].read(clip_id) if cache else None,
        on_leased=leased,
        link=connectivity,
        give_back=lambda lease: bool(bench) and bench[0].gives_back(lease),
        on_given_back=lambda lease: bench[0].given_back(lease),
    )
    workbench = Workbench(
        store=store,
        prefetcher=prefetcher,
        index=None,
        session=Session(daily_target=settings.daily_target, shift_hours=settings.shift_hours),
        clock=time.monotonic,
        connectivity=connectivity,
        client_factory=factory,
    )
    leased.target = workbench.record_leased
    bench.append(workbench)
    # Prefetching starts now, so leasing, downloading and decoding the first clip overlap the
    # rest of start-up (imports, the taxonomy, the audio device, Textual): cold start is budgeted.
    workbench.adopt()
    # The prefetch thread imports annotator.audio.decode for its first clip while this thread
    # imports annotator.audio.backends below: two threads initialising one package at once can
    # trip Python's import locks (an ImportError or _DeadlockError at start, seen under the
    # crash test). Import the package here first; the prefetch thread needs it anyway.
    importlib.import_module("annotator.audio")
    prefetcher.start()
    try:
        cache.append(ClipCache.open_default())
        taxonomy = _taxonomy(factory)
        from annotator.sync import SyncEngine
        from api.taxonomy import TaxonomyIndex

        player, player_reason = open_configured_player(settings)
        if settings.normalise_loudness:
            player.set_loudness_target(settings.loudness_target)
    except BaseException:
        prefetcher.close(release_unused=True)
        store.close()
        raise
    sync_events = EventRelay()
    sync = SyncEngine(
        store,
        factory,
        on_event=sync_events,
        on_acknowledged=workbench.acknowledged,
        cache=cache[0],
        link=connectivity,
    )
    workbench.index = TaxonomyIndex(taxonomy)
    workbench.cache = cache[0]
    workbench.attach_sync(sync)
    notices = [m for m in (store.recovery_message,) if m]
    if settings.insecure:
        notices.append("--insecure: recordings and your token may cross the network unencrypted")
    return Services(
        settings=settings,
        keymap=keymap,
        taxonomy=taxonomy,
        client_factory=factory,
        player=player,
        player_reason=player_reason,
        store=store,
        prefetcher=prefetcher,
        sync=sync,
        cache=cache[0],
        sync_events=sync_events,
        startup_notices=notices,
        connectivity=connectivity,
        workbench=workbench,
    )


class _HealthProbe:
    """A health check on one client of its own, kept between checks (the heartbeat thread's)."""

    def __init__(self, factory: Callable[..., QueueClient], timeout: float) -> None:
        self._factory = factory
        self._timeout = timeout
        self._client: QueueClient | None = None

    def __call__(self) -> object:
        if self._client is None:
            self._client = self._factory(timeout=self._timeout)
        return self._client.health()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def token_refused(e: Unauthorized) -> LaunchError:
    return LaunchError(
        f"the server refused the token ({e.error.message}): check ANNOTATOR_TOKEN or "
        "token in config.toml"
    )


def _taxonomy(client_factory: Callable[..., QueueClient]) -> Taxonomy:
    """The server's taxonomy, cached for offline starts; the shipped default as a last resort."""
    from annotator.paths import data_dir, ensure_private_dir
    from api.client import ApiError, Unauthorized
    from api.models import Taxonomy
    from api.taxonomy import load_default_taxonomy

    cache = data_dir() / "taxonomy.json"
    try:
        with client_factory() as client:
            taxonomy = client.taxonomy()
    except Unauthorized as e:
        raise token_refused(e) from None
    except ApiError:
        with suppress(OSError, ValueError):
            return Taxonomy.model_validate_json(cache.read_bytes())
        return load_default_taxonomy()
    with suppress(OSError):
        ensure_private_dir(cache.parent)
        cache.write_text(taxonomy.model_dump_json(), "utf-8")
    return taxonomy
