"""The client's settings: command-line flags > `ANNOTATOR_*` environment > config.toml > defaults.

Every problem stops start-up with a ConfigError that says where the bad value came from (the file
and line, the environment variable, or the flag) and how to fix it. Unknown keys in config.toml are
errors too: a typo such as `prefech = 0` would otherwise be ignored without a word.

Example config.toml (in the directory `annotator --help` shows)::

    server = "https://queue.example.org"
    token = "…"                  # or ANNOTATOR_TOKEN; never on the command line of a shared host
    keymap = "pedal"
    seek_seconds = 3
    [keys]
    "form.submit" = "f12"
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    FilePath,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from annotator.keymap import toml_error_line, toml_key_lines
from annotator.paths import config_file

ENV_PREFIX = "ANNOTATOR_"
AudioChoice = Literal["auto", "simpleaudio", "miniaudio", "relay", "pulse", "none"]

# Flags that map onto settings (see annotator/cli.py); --config picks the file instead.
_CLI_FIELDS = ("server", "token", "ca_bundle", "insecure", "audio", "keymap")
_SECRET_FIELDS = frozenset({"token", "relay_secret"})
_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
#: A config.toml is a few hundred bytes; anything over this is not one (or never ends: /dev/zero).
MAX_CONFIG_BYTES = 1 << 20


class ConfigError(Exception):
    """Settings that cannot be used; the message names the source, the field and the fix."""


def _path_problem(exc: OSError | RuntimeError | ValueError) -> str:
    """Why a path cannot be used, without echoing the (possibly huge) path itself."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _shown(path: object, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit]}…"


def _expand_user(value: object) -> object:
    """`~/x` and `~user/x` expanded; a path the OS cannot even look up is a ValueError (which
    becomes a normal config error naming the source) instead of a RuntimeError or OSError."""
    if not isinstance(value, str) or not value:
        return value
    try:
        path = Path(value).expanduser()
        path.is_file()  # probe: an over-long name or a NUL raises here, not in pydantic's check
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"cannot be used as a path: {_path_problem(exc)}") from None
    return path


def _flatten_keys(value: object) -> object:
    """`player.toggle = "f6"` without quotes is a nested table in TOML; ids are dotted strings."""
    if not isinstance(value, Mapping):
        return value
    flat: dict[str, object] = {}
    for key, item in value.items():
        if isinstance(item, Mapping):
            nested = _flatten_keys(item)
            assert isinstance(nested, dict)
            flat.update({f"{key}.{k}": v for k, v in nested.items()})
        else:
            flat[str(key)] = item
    return flat


class Settings(BaseSettings):
    """Everything the annotation terminal can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    server: str | None = Field(
        default=None,
        description="Queue server URL, e.g. https://queue.example.org (http:// only on loopback "
        "unless `insecure`).",
    )
    token: SecretStr | None = Field(
        default=None,
        repr=False,
        description="Your API token. Prefer ANNOTATOR_TOKEN or this file (mode 0600) to --token: "
        "a command line is visible to other users of the host.",
    )
    ca_bundle: Annotated[FilePath | None, BeforeValidator(_expand_user)] = Field(
        default=None,
        description="PEM bundle of the CA that signed a server's private certificate.",
    )
    insecure: bool = Field(
        default=False,
        description="Allow plain http:// to a non-loopback server; shown permanently in the UI.",
    )
    audio: AudioChoice = Field(
        default="auto",
        description="Audio backend: auto picks simpleaudio where it works, else miniaudio; relay "
        "plays on your laptop via `annotator relay`; none runs muted.",
    )
    relay: str | None = Field(
        default=None,
        description="host:port of `annotator relay` on your laptop (for audio = relay).",
    )
    relay_secret: SecretStr | None = Field(
        default=None,
        repr=False,
        description="Shared secret the relay prints when it starts.",
    )
    keymap: str = Field(
        default="default",
        description="default, vim, pedal, a name in <config dir>/keymaps/, or a path to a .toml.",
    )
    keys: Annotated[dict[str, str | list[str]], BeforeValidator(_flatten_keys)] = Field(
        default_factory=dict,
        description='Per-action key overrides, binding id -> key(s): [keys] "form.submit" = "f12".',
    )
    seek_seconds: float = Field(
        default=2.0, ge=0.5, le=30.0, description="How far seek back/forward jumps, in seconds."
    )
    speed_step: float = Field(
        default=0.25,
        ge=0.05,
        le=0.5,
        description="Playback speed change per slower/faster key (speed stays within 0.5x-2x).",
    )
    normalise_loudness: bool = Field(
        default=False,
        description="Bring every clip to the same loudness (RMS of its speech, `loudness_target`) "
        "before your gain steps; never louder than the clip's peak allows.",
    )
    loudness_target: float = Field(
        default=-20.0,
        ge=-40.0,
        le=-6.0,
        description="Loudness that normalise_loudness aims at, in dB full scale (RMS).",
    )
    prefetch: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Clips kept leased, downloaded and decoded ahead; 0 turns prefetch off.",
    )
    daily_target: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Clips a day the pace indicator measures against.",
    )
    shift_hours: float = Field(
        default=9.0, gt=0, le=24, description="Length of a shift, for the pace indicator."
    )
    draft_debounce_s: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="Quiet time after typing before the draft is saved locally.",
    )
    lease_ttl_s: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="Lease length asked of the server; leases are renewed before they expire.",
    )
    history_hours: float = Field(
        default=24.0,
        gt=0,
        le=168,
        description="How long acknowledged submissions stay on this disk (encrypted) for the "
        "review list; they quote strangers, so keep it short.",
    )

    _source_file: Path | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> Path | None:
        """The config.toml these settings read, or None when there was none."""
        return self._source_file

    @property
    def keys_source(self) -> str:
        """Where `keys` came from, as a keymap error should name it (with the file's lines)."""
        if os.environ.get("ANNOTATOR_KEYS"):
            return "environment ANNOTATOR_KEYS"
        return str(self._source_file) if self._source_file else "config.toml"

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.strip().rstrip("/")

    @field_validator("relay")
    @classmethod
    def _check_relay(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _HOST_PORT.match(value.strip())
        if match is None or not 0 < int(match.group(1)) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:47001")
        return value.strip()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init = command-line flags; no dotenv or secrets dir: one file, one place to look.
        path = _CONFIG_PATH.get()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path or config_file())
        return init_settings, env_settings, toml


_CONFIG_PATH: ContextVar[Path | None] = ContextVar("annotator_config_path", default=None)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    token = _CONFIG_PATH.set(path)
    try:
        yield
    finally:
        _CONFIG_PATH.reset(token)


def config_path(args: argparse.Namespace | None = None) -> Path:
    """The config file in use: `--config`, else the platformdirs default."""
    explicit = getattr(args, "config", None) if args is not None else None
    return Path(explicit).expanduser() if explicit else config_file()


def cli_overrides(args: argparse.Namespace | None) -> dict[str, Any]:
    """Settings given as flags: only those present and set (argparse leaves the rest None)."""
    if args is None:
        return {}
    values: dict[str, Any] = {}
    for name in _CLI_FIELDS:
        value = getattr(args, name, None)
        # store_true gives False when the flag is absent; that must not beat env or file.
        if value is None or value is False:
            continue
        values[name] = value
    return values


def _read_config_file(path: Path, explicit: bool) -> tuple[str, dict[str, Any]]:
    """The file's text and TOML; ("", {}) when the default file does not exist.

    Only a regular file of at most MAX_CONFIG_BYTES is read: `--config /dev/zero`, a FIFO or a
    huge file is refused instead of being read into memory. A path the OS cannot look up raises
    OSError / RuntimeError / ValueError, which `load_settings` turns into a ConfigError.
    """
    if not path.exists():
        if explicit:
            raise ConfigError(f"{_shown(path)}: config file not found (given with --config)")
        return "", {}
    how = "given with --config" if explicit else "the default config file"
    if not stat.S_ISREG(path.stat().st_mode):
        raise ConfigError(
            f"{_shown(path)}: not a regular file ({how}) — point --config at a config.toml"
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{_shown(path)}: larger than {MAX_CONFIG_BYTES // 1024} KiB, so not a config "
                f"file ({how}) — point --config at a config.toml"
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_shown(path)}: cannot read the config file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = toml_error_line(exc, text)
        raise ConfigError(f"{path} line {line}: malformed TOML: {exc}") from exc
    return text, data


def _check_unknown_keys(path: Path, data: Mapping[str, Any], lines: Mapping[str, int]) -> None:
    known = sorted(Settings.model_fields)
    problems = []
    for key in data:
        if key in Settings.model_fields:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = (
            f" — did you mean {close[0]!r}?" if close else f" — known settings: {', '.join(known)}"
        )
        problems.append(f"{path} line {lines.get(key, '?')}: unknown setting {key!r}{hint}")
    if problems:
        raise ConfigError("\n".join(problems))


def _env_name(field: str) -> str | None:
    wanted = f"{ENV_PREFIX}{field}".upper()
    return next((name for name in os.environ if name.upper() == wanted), None)


def _describe(
    error: Mapping[str, Any],
    *,
    path: Path,
    lines: Mapping[str, int],
    file_data: Mapping[str, Any],
    flags: Mapping[str, Any],
) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    field = loc[0] if loc else "?"
    dotted = ".".join(loc)
    message = str(error.get("msg", "invalid value"))
    value = error.get("input")
    got = ""
    if field not in _SECRET_FIELDS and isinstance(value, str | int | float | bool):
        got = f" (got {str(value)[:60]!r})"
    if field in flags:
        flag = "--" + field.replace("_", "-")
        return f"command line {flag}: {message}{got} — fix the {flag} value"
    if (env := _env_name(field)) is not None:
        return f"environment {env}: {dotted}: {message}{got} — fix or unset {env}"
    if field in file_data:
        line = lines.get(dotted) or lines.get(field)
        where = f"{path} line {line}" if line else str(path)
        return f"{where}: {dotted}: {message}{got} — fix the value or remove the line"
    return f"{dotted}: {message}{got}"


def load_settings(args: argparse.Namespace | None = None) -> Settings:
    """Settings from flags (`args`), environment, config file and defaults. Raises ConfigError."""
    explicit = args is not None and bool(getattr(args, "config", None))
    path: Path | None = None
    try:
        path = config_path(args)
        text, file_data = _read_config_file(path, explicit)
    except (OSError, RuntimeError, ValueError) as exc:
        given = getattr(args, "config", None) if explicit else path
        where = f"{'--config ' if explicit else ''}{_shown(given)!r}" if given else "config file"
        fix = (
            "give --config the path of an existing config.toml"
            if explicit
            else "check ANNOTATOR_HOME and the config directory"
        )
        raise ConfigError(f"{where}: cannot be used: {_path_problem(exc)} — {fix}") from None
    lines = toml_key_lines(text)
    _check_unknown_keys(path, file_data, lines)
    flags = cli_overrides(args)
    try:
        with _reading(path):
            settings = Settings(**flags)
    except ValidationError as exc:
        raise ConfigError(
            "\n".join(
                _describe(e, path=path, lines=lines, file_data=file_data, flags=flags)
                for e in exc.errors(include_url=False)
            )
        ) from None
    except SettingsError as exc:
        # Raised for environment values of structured fields (keys) that are not valid JSON.
        match = re.search(r'field "(\w+)"', str(exc))
        env = _env_name(match.group(1)) if match else None
        raise ConfigError(
            f"environment {env or ENV_PREFIX + '*'}: not valid JSON ({exc}) — write it as JSON, "
            'e.g. {"form.submit": "f12"}, or unset it'
        ) from None
    settings._source_file = path if file_data or text else None
    return settings
