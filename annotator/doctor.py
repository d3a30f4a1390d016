"""`annotator doctor`: is everything the annotator needs working here, and if not, what to do.

Each check is a real attempt (a tone played on the device, an authenticated API call), not a
look at the configuration. The exit status is 0 only when nothing failed; warnings (basic
colours, an SSH session without a relay) do not stop anyone from working.

Secrets: the token and the relay secret are never printed; every line is also scrubbed of them
before it reaches the terminal, so a library's error message cannot leak one either.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annotator.audio.decode import DecodedAudio
    from annotator.config import Settings

MIN_COLUMNS, MIN_LINES = 80, 24
SKEW_WARN_S, SKEW_FAIL_S = 2.0, 30.0
DISK_WARN_BYTES, DISK_FAIL_BYTES = 1 << 30, 200 << 20
RELAY_PROBE_TIMEOUT_S = 5.0


class Status(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def doctor(args: argparse.Namespace) -> int:
    from api.text_safety import escaping_console

    checks, secrets = run_checks(args)
    console = escaping_console(highlight=False)
    console.print(render(checks, secrets))
    failed = [c.name for c in checks if c.status is Status.FAIL]
    if failed:
        console.print(
            f"[red]{len(failed)} problem(s)[/]: {', '.join(failed)} — see the fixes above."
        )
        return 1
    console.print("[green]Everything the annotator needs works.[/]")
    return 0


def run_checks(args: argparse.Namespace) -> tuple[list[Check], list[str]]:
    """All checks in display order, and the secrets to scrub from the output."""
    checks: list[Check] = [check_terminal()]
    settings, config_check = load_config(args)
    checks.append(config_check)
    secrets = _secrets(settings)
    checks.append(check_ssh(settings))
    checks.append(check_audio(settings))
    checks.extend(check_server(settings))
    checks.append(check_disk())
    checks.append(check_cache_key())
    checks.append(check_keymap(args, settings))
    checks.append(check_asr())
    return checks, secrets


def check_asr() -> Check:
    """Machine drafts are made on the server (`annotator ingest`): informational here."""
    from api.server.asr.status import asr_status

    status = asr_status()
    return Check("asr drafts", Status.OK if status.available else Status.SKIP, status.detail)


def render(checks: list[Check], secrets: list[str]) -> object:
    from rich.table import Table
    from rich.text import Text

    styles = {
        Status.OK: "green",
        Status.WARN: "yellow",
        Status.FAIL: "bold red",
        Status.SKIP: "dim",
    }
    table = Table(title="annotator doctor", show_lines=True, expand=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail")
    table.add_column("fix")
    for check in checks:
        table.add_row(
            check.name,
            Text(check.status.value, style=styles[check.status]),
            Text(_scrub(check.detail, secrets)),
            Text(_scrub(check.fix, secrets)),
        )
    return table


# ----- terminal and session ----------------------------------------------------------------------


def terminal_size() -> os.terminal_size | None:
    """The size of the terminal this session runs in: COLUMNS/LINES when set (as `shutil` reads
    them), else the controlling terminal's — whatever stdout is, so `annotator doctor > file` or
    `| less` still measures the real window — else any standard stream that is a terminal.
    None when there is no terminal at all (cron, a CI job)."""
    env = shutil.get_terminal_size(fallback=(0, 0))
    if os.environ.get("COLUMNS") and os.environ.get("LINES") and env.columns and env.lines:
        return env
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            return os.get_terminal_size(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        try:
            return os.get_terminal_size(stream.fileno())
        except (OSError, ValueError, AttributeError):
            continue
    return None


def check_terminal() -> Check:
    found = terminal_size()
    term = os.environ.get("TERM", "")
    colours = _colours(term)
    if found is None:
        return Check(
            "terminal",
            Status.WARN,
            f"no terminal to measure (not run from one), TERM={term or '(unset)'}",
            "run `annotator doctor` in the terminal you annotate in to check its size",
        )
    size = found
    detail = f"{size.columns}×{size.lines}, TERM={term or '(unset)'}, {colours}"
    if size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
        return Check(
            "terminal",
            Status.FAIL,
            detail,
            f"enlarge the window to at least {MIN_COLUMNS}×{MIN_LINES} (or a smaller font)",
        )
    if not term or term == "dumb":
        return Check(
            "terminal",
            Status.FAIL,
            detail,
            "set TERM for your terminal, e.g. export TERM=xterm-256color (inside tmux: "
            "set -g default-terminal tmux-256color)",
        )
    if colours.startswith("basic"):
        return Check(
            "terminal",
            Status.WARN,
            detail,
            "the waveform and lint marks look best with 256 colours: TERM=xterm-256color",
        )
    return Check("terminal", Status.OK, detail)


def _colours(term: str) -> str:
    if os.environ.get("NO_COLOR"):
        return "no colours (NO_COLOR is set)"
    if os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "true colour"
    if "256" in term:
        return "256 colours"
    return "basic 16 colours"


def check_ssh(settings: Settings | None) -> Check:
    connection = os.environ.get("SSH_CONNECTION", "")
    over_ssh = bool(connection or os.environ.get("SSH_TTY") or os.environ.get("SSH_CLIENT"))
    relay = _relay_address(settings)
    pulse = os.environ.get("PULSE_SERVER")
    audio = settings.audio if settings else "auto"
    if relay and audio in ("auto", "relay"):
        where = f"to your laptop through the relay at {relay}"
    elif audio == "pulse" or (pulse and audio != "none"):
        where = f"to the PulseAudio/PipeWire server at {pulse or '(default)'}"
    elif audio == "none":
        where = "nowhere (--audio none)"
    else:
        where = "to this machine's sound card"
    if not over_ssh:
        return Check("session", Status.OK, f"local session; sound goes {where}")
    client = connection.split()[0] if connection else "a remote client"
    detail = f"SSH session from {client}; sound goes {where}"
    if where.startswith("to this machine"):
        return Check(
            "session",
            Status.WARN,
            detail + " — that is the remote host's, not your laptop's",
            "on your laptop run `annotator relay` and reconnect with "
            "`ssh -R 47001:127.0.0.1:47001 …`, then export ANNOTATOR_RELAY=127.0.0.1:47001 and "
            "paste the secret with read -rsp 'relay secret: ' ANNOTATOR_RELAY_SECRET "
            "(see README, Working over SSH)",
        )
    return Check("session", Status.OK, detail)


# ----- configuration -----------------------------------------------------------------------------


def load_config(args: argparse.Namespace) -> tuple[Settings | None, Check]:
    from annotator.config import ConfigError, load_settings

    try:
        settings = load_settings(args)
    except ConfigError as exc:
        return None, Check(
            "config",
            Status.FAIL,
            str(exc),
            "correct the value named (file and line, variable or flag) and run doctor again",
        )
    source = settings.source_file
    if source is not None and (exposed := _secrets_readable_by_others(source)):
        return settings, Check(
            "config",
            Status.FAIL,
            f"{source} holds {exposed} and other users can read it (mode "
            f"{stat.S_IMODE(source.stat().st_mode):04o}); treat it as seen: ask for a new token",
            f"chmod 600 {source}",
        )
    return settings, Check("config", Status.OK, f"read {source}" if source else "no config file")


def _secrets_readable_by_others(path: Path) -> str | None:
    """'a token' (or relay secret) when `path` holds one and its mode lets others read it."""
    try:
        if not stat.S_IMODE(path.stat().st_mode) & 0o044:
            return None
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    held = [name for name in ("token", "relay_secret") if data.get(name)]
    return " and ".join(f"a {n.replace('_', ' ')}" for n in held) or None


def _secrets(settings: Settings | None) -> list[str]:
    values = [os.environ.get("ANNOTATOR_TOKEN"), os.environ.get("ANNOTATOR_RELAY_SECRET")]
    if settings is not None:
        for secret in (settings.token, settings.relay_secret):
            if secret is not None:
                values.append(secret.get_secret_value())
    return [v for v in values if v and len(v) >= 4]


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _relay_address(settings: Settings | None) -> str | None:
    if settings is not None and settings.relay:
        return settings.relay
    return os.environ.get("ANNOTATOR_RELAY") or None


# ----- audio -------------------------------------------------------------------------------------


def check_audio(settings: Settings | None) -> Check:
    choice = settings.audio if settings else "auto"
    relay = _relay_address(settings)
    if choice == "relay" or (choice == "auto" and relay):
        return check_relay(settings, relay)
    if choice == "none":
        return Check("audio", Status.WARN, "audio is off (--audio none): you will work muted")
    from annotator.audio.backends import probe_backend

    probe = probe_backend(choice)
    if probe.works:
        return Check("audio", Status.OK, probe.detail)
    detail = probe.detail.replace("; see `annotator doctor`", "")
    return Check("audio", Status.FAIL, detail, _audio_fix())


def _audio_fix() -> str:
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return (
            "over SSH, play on your laptop: run `annotator relay` there and use --audio relay "
            "(README, Working over SSH)"
        )
    return (
        "check a sound card is present (`aplay -l`) and not muted (`alsamixer`); with PulseAudio "
        "or PipeWire, try --audio miniaudio; to work muted, --audio none"
    )


def check_relay(settings: Settings | None, address: str | None) -> Check:
    from annotator.audio.player import BackendUnavailableError
    from annotator.relay.player import open_relay_player

    secret = (
        settings.relay_secret.get_secret_value() if settings and settings.relay_secret else None
    )
    try:
        # A probe: it plays when the laptop's device is free and never takes the sound from an
        # annotator session that is paired right now.
        player = open_relay_player(address, secret, probe=True)
    except BackendUnavailableError as exc:
        return Check("audio", Status.FAIL, f"relay: {exc}", "see README, Working over SSH")
    try:
        player.load(_tone(0.2))
        started = time.monotonic()
        player.play()
        deadline = started + RELAY_PROBE_TIMEOUT_S
        while player.last_started is None and time.monotonic() < deadline:
            if player.needs_secret:
                break
            time.sleep(0.01)
        last = player.last_started
        if last is None and player.connected:
            return Check(
                "audio",
                Status.WARN,
                f"relay at {player.address} ({player.relay_info}): paired, but the laptop's "
                f"device stayed busy with your running annotator for "
                f"{RELAY_PROBE_TIMEOUT_S:.0f} s, so the tone was not played",
                "the path works up to the laptop; pause the annotator and run doctor again "
                "to hear the tone",
            )
        if last is None:
            return Check(
                "audio",
                Status.FAIL,
                f"relay at {player.address}: {player.status}",
                "on your laptop: start `annotator relay`, keep the `ssh -R` session open, and "
                "paste the secret it shows: read -rsp 'relay secret: ' ANNOTATOR_RELAY_SECRET",
            )
        player.wait_drained(2.0)
        took = (last.estimated_at - started) * 1000
        return Check(
            "audio",
            Status.OK,
            f"relay at {player.address} ({player.relay_info}): played a 200 ms tone, "
            f"first frame after {took:.1f} ms",
        )
    finally:
        player.close()


# ----- server, token, clock ----------------------------------------------------------------------


def check_server(settings: Settings | None) -> Iterator[Check]:
    if settings is None:
        yield Check("server", Status.SKIP, "the configuration could not be read")
        return
    if not settings.server:
        yield Check(
            "server",
            Status.FAIL,
            "no server configured",
            'set ANNOTATOR_SERVER=https://… or server = "https://…" in config.toml',
        )
        return
    from annotator.workbench.clients import client_factory
    from api.client import ApiError, InsecureServerError, OfflineError, Unauthorized

    token = settings.token.get_secret_value() if settings.token else ""
    https = settings.server.startswith("https://")
    try:
        client = client_factory(settings, need_token=False)()
    except InsecureServerError as exc:
        yield Check("server", Status.FAIL, str(exc), "use the server's https:// URL")
        return
    with client:
        sent = datetime.now(UTC)
        try:
            health = client.health()
        except OfflineError as exc:
            yield _offline(settings.server, str(exc), https)
            return
        except ApiError as exc:
            yield Check(
                "server",
                Status.FAIL,
                f"{settings.server} answered, but not as a queue server: {exc}",
                "check the URL (it is the server's base URL, without /v1)",
            )
            return
        received = datetime.now(UTC)
        yield Check("server", Status.OK, f"{settings.server} is up (version {health.version})")
        yield _tls(settings)
        yield _clock(health.time, sent, received)
        if not token:
            yield Check(
                "token",
                Status.FAIL,
                "no token configured",
                'set ANNOTATOR_TOKEN (preferred) or token = "…" in config.toml (mode 0600)',
            )
            return
        try:
            stats = client.my_stats()
        except Unauthorized:
            yield Check(
                "token",
                Status.FAIL,
                "token rejected by the server (401)",
                "token rejected: create a new one with `annotator token create NAME` (ask your "
                "admin) and set it in ANNOTATOR_TOKEN or config.toml",
            )
            return
        except ApiError as exc:
            yield Check("token", Status.FAIL, f"the token check failed: {exc}", "ask your admin")
            return
        yield Check("token", Status.OK, f"accepted ({stats.today} clips today)")


def _offline(server: str, message: str, https: bool) -> Check:
    lowered = message.lower()
    if https and ("certificate" in lowered or "ssl" in lowered):
        return Check(
            "TLS",
            Status.FAIL,
            f"{server}: the certificate could not be verified ({message})",
            "if your organisation runs its own CA, pass --ca-bundle FILE (or ca_bundle in "
            "config.toml); never --insecure for https",
        )
    return Check(
        "server",
        Status.FAIL,
        f"cannot reach {server}: {message}",
        "check the URL, your network/VPN, and that the server is running",
    )


def _tls(settings: Settings) -> Check:
    assert settings.server is not None
    if settings.server.startswith("https://"):
        bundle = f" against {settings.ca_bundle}" if settings.ca_bundle else ""
        return Check("TLS", Status.OK, f"certificate verified{bundle}")
    from api.client import is_loopback_url

    if is_loopback_url(settings.server):
        return Check("TLS", Status.OK, "plain http on loopback (nothing crosses the network)")
    return Check(
        "TLS",
        Status.WARN,
        "plain http with --insecure: recordings and your token cross the network unencrypted",
        "ask your admin for the https:// URL",
    )


def _clock(server_time: datetime, sent: datetime, received: datetime) -> Check:
    if server_time.tzinfo is None:
        server_time = server_time.replace(tzinfo=UTC)
    midpoint = sent + (received - sent) / 2
    skew = (midpoint - server_time).total_seconds()
    detail = f"this machine is {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} the server"
    fix = "turn on time sync: `timedatectl set-ntp true` (or ask the host's admin)"
    if abs(skew) > SKEW_FAIL_S:
        return Check("clock", Status.FAIL, detail + " (leases and stats will be wrong)", fix)
    if abs(skew) > SKEW_WARN_S:
        return Check("clock", Status.WARN, detail, fix)
    return Check("clock", Status.OK, detail)


# ----- local files -------------------------------------------------------------------------------


def check_disk() -> Check:
    from annotator.paths import data_dir

    where = data_dir()
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / (1 << 30):.1f} GB free for {where}"
    fix = "free some space (the clip cache and drafts live there), or `annotator purge`"
    if free < DISK_FAIL_BYTES:
        return Check("disk", Status.FAIL, detail, fix)
    if free < DISK_WARN_BYTES:
        return Check("disk", Status.WARN, detail, fix)
    return Check("disk", Status.OK, detail)


def check_cache_key() -> Check:
    from annotator.paths import config_dir
    from annotator.store.keys import KEY_FILE, CacheKeyError, load_cache_key

    path = config_dir() / KEY_FILE
    if not path.exists():
        return _cache_key_elsewhere(path)
    st = path.stat()
    if st.st_uid != os.getuid():
        return Check("cache key", Status.FAIL, f"{path} belongs to another user", f"remove {path}")
    if st.st_mode & 0o077:
        return Check(
            "cache key",
            Status.FAIL,
            f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            f"chmod 600 {path}",
        )
    try:
        load_cache_key()
    except CacheKeyError as exc:
        return Check(
            "cache key",
            Status.FAIL,
            str(exc),
            f"move {path} away (cached clips are then downloaded again)",
        )
    return Check("cache key", Status.OK, f"{path} (0600)")


def _cache_key_elsewhere(path: Path) -> Check:
    if not os.environ.get("ANNOTATOR_HOME") or os.environ.get("ANNOTATOR_KEYRING") == "1":
        try:
            import keyring

            from annotator.store.keys import KEYRING_SERVICE, KEYRING_USER, keyring_usable

            if keyring_usable() and keyring.get_password(KEYRING_SERVICE, KEYRING_USER):
                return Check("cache key", Status.OK, "in the system keyring")
        except Exception as exc:  # noqa: BLE001 - any keyring failure means "not there"
            return Check(
                "cache key",
                Status.WARN,
                f"the keyring cannot be read ({type(exc).__name__}); a key file {path} will be "
                "used",
            )
    return Check(
        "cache key",
        Status.WARN,
        f"not created yet: the annotator makes {path} (mode 0600) on first start",
    )


def check_keymap(args: argparse.Namespace, settings: Settings | None) -> Check:
    from annotator.keymap import KeymapError, load_keymap

    name = settings.keymap if settings else getattr(args, "keymap", None)
    overrides = settings.keys if settings else None
    source = settings.keys_source if settings else "config.toml"
    try:
        keymap = load_keymap(name, overrides, overrides_source=source)
    except KeymapError as exc:
        return Check(
            "keymap",
            Status.FAIL,
            str(exc),
            'fix or remove the lines named; `keymap = "default"` always works',
        )
    return Check(
        "keymap", Status.OK, f"{keymap.name} ({keymap.source}), {len(keymap.bindings)} actions"
    )


def _tone(seconds: float, rate: int = 48000) -> DecodedAudio:
    import numpy as np

    from annotator.audio.decode import DecodedAudio

    t = np.arange(round(seconds * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # no click at either end
    mono = (np.sin(2 * np.pi * 440.0 * t) * fade * 0.2 * 32767).astype(np.int16)
    samples = np.ascontiguousarray(np.stack([mono, mono], axis=1))
    return DecodedAudio(samples=samples, sample_rate=rate, channels=2, duration_s=seconds)
