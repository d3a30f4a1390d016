"""Config and keymap loading from hostile input: only ConfigError / KeymapError, never a crash.

tests/test_config.py and tests/test_keymap.py already fuzz TOML-shaped text (known keys, simple
values, trailing noise). This covers what they do not: raw bytes (invalid UTF-8, BOMs, NULs),
structured TOML with every field given every type (nested tables, arrays, dates, huge numbers,
paths that cannot exist), arbitrary environment variables for every field, arbitrary --config and
--keymap paths (`~nosuchuser/…`, names longer than the OS allows, NULs), `extends` chains between
fuzzed files, and a config "file" that never ends. Secrets given as wrongly-typed values never
appear in the error message.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotator.config import ConfigError, Settings, load_settings
from annotator.keymap import KeymapError, load_keymap

SECRET_MARK = "sekrit"  # every token / relay_secret value drawn carries it
FIELDS = sorted(Settings.model_fields)
SECRET_FIELDS = {"token", "relay_secret"}
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("ANNOTATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "config").mkdir(parents=True)
    return tmp_path / "home"


def _config_file(home: Path) -> Path:
    return home / "config" / "config.toml"


# ---------------------------------------------------------------- strategies

#: Paths a user can type that no file system will open.
ODD_PATHS = st.sampled_from(
    [
        "~nosuchuser-q7/x.pem",
        "~nosuchuser-q7",
        "~",
        "a" * 300,
        "/" + "b" * 5000,
        "/etc",
        "/dev/null",
        "",
        ".",
        "../../../../etc/passwd",
        "x.toml",
        "vim",
        "default",
        "/proc/self/status",
        "C:\\Users\\x\\keys.toml",
    ]
)
TEXT = st.one_of(st.text(max_size=30), ODD_PATHS)
SCALARS = st.one_of(
    TEXT,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.dates(),
    st.datetimes(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    ),
    max_leaves=8,
)


def toml_value(value: Any) -> str:
    """A TOML literal (inline tables for mappings); close enough that most parse."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    raise TypeError(type(value))


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    """A TOML document giving real fields (and some unknown ones) values of any type."""
    names = draw(
        st.lists(st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=8)), max_size=6)
    )
    lines = []
    for name in dict.fromkeys(names):
        value = draw(VALUES)
        if name in SECRET_FIELDS:
            value = draw(
                st.one_of(
                    st.lists(st.just(f"{SECRET_MARK}-{draw(st.text(max_size=5))}"), max_size=2),
                    st.fixed_dictionaries({"v": st.just(SECRET_MARK)}),
                    st.just(f"{SECRET_MARK}-ok"),
                )
            )
        lines.append(f"{json.dumps(name)} = {toml_value(value)}")
    if draw(st.booleans()):
        table = draw(st.dictionaries(st.text(min_size=1, max_size=12), VALUES, max_size=3))
        lines.append("[keys]")
        lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


@contextmanager
def env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _only_config_errors(args: argparse.Namespace | None = None) -> None:
    try:
        s = load_settings(args)
    except ConfigError as exc:
        message = str(exc)
        assert message
        assert SECRET_MARK not in message, f"a secret reached the error message: {message}"
    except Exception as exc:
        raise AssertionError(f"load_settings leaked {type(exc).__name__}: {exc}"[:160]) from exc
    else:
        assert isinstance(s, Settings)


def _only_keymap_errors(name: str | None, overrides: Any = None) -> None:
    try:
        load_keymap(name, overrides)
    except KeymapError as exc:
        assert str(exc)
    except Exception as exc:
        raise AssertionError(f"load_keymap leaked {type(exc).__name__}: {exc}"[:160]) from exc


# ---------------------------------------------------------------- config


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300), st.binary(max_size=100).map(lambda b: b"\xef\xbb\xbf" + b)
    )
)
def test_config_bytes(home: Path, raw: bytes) -> None:
    _config_file(home).write_bytes(raw)
    _only_config_errors()


@FUZZ
@given(doc=config_documents())
def test_config_every_field_every_type(home: Path, doc: str) -> None:
    _config_file(home).write_text(doc, encoding="utf-8", errors="surrogatepass")
    _only_config_errors()


ENV_TEXT = st.one_of(st.text(max_size=40), ODD_PATHS, st.sampled_from(["{", "[]", "{}", "nan"]))


@FUZZ
@given(
    values=st.dictionaries(
        st.sampled_from(FIELDS),
        ENV_TEXT.map(lambda t: t.replace("\x00", "")),
        max_size=5,
    )
)
def test_config_environment(home: Path, values: dict[str, str]) -> None:
    names = {f"ANNOTATOR_{k.upper()}": v for k, v in values.items()}
    encodable = {
        k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for k, v in names.items()
    }
    with env(encodable):
        _only_config_errors()


@FUZZ
@given(
    config=st.one_of(st.none(), ODD_PATHS, st.text(max_size=20)),
    flags=st.fixed_dictionaries(
        {},
        optional={
            "server": TEXT,
            "token": st.just(SECRET_MARK),
            "ca_bundle": ODD_PATHS,
            "audio": TEXT,
            "keymap": TEXT,
            "insecure": st.booleans(),
        },
    ),
)
def test_config_command_line(home: Path, config: str | None, flags: dict[str, Any]) -> None:
    _only_config_errors(argparse.Namespace(config=config, **flags))


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("file", "~nosuchuser-q7/ca.pem"),
        ("file", "/" + "c" * 5000),
        ("env", "~nosuchuser-q7/ca.pem"),
        ("env", "/" + "c" * 5000),
        ("flag", "~nosuchuser-q7/ca.pem"),
        ("flag", "/" + "c" * 5000),
    ],
    ids=lambda v: v if len(v) < 40 else "too-long",
)
def test_ca_bundle_that_cannot_be_a_path(home: Path, source: str, value: str) -> None:
    """A ca_bundle naming an unknown user's home or a path longer than the OS allows."""
    if source == "file":
        _config_file(home).write_text(f"ca_bundle = {json.dumps(value)}\n")
        _only_config_errors()
    elif source == "env":
        with env({"ANNOTATOR_CA_BUNDLE": value}):
            _only_config_errors()
    else:
        _only_config_errors(argparse.Namespace(ca_bundle=value))


@pytest.mark.parametrize(
    "path", ["~nosuchuser-q7/config.toml", "/" + "d" * 5000, "a\x00b"], ids=["tilde", "long", "nul"]
)
def test_config_flag_that_cannot_be_a_path(home: Path, path: str) -> None:
    _only_config_errors(argparse.Namespace(config=path))


def test_config_file_that_never_ends(tmp_path: Path) -> None:
    """`--config /dev/zero` (or a FIFO, or a huge file) must not eat all memory: a clear error.

    Run in a child with a 1 GiB address-space limit so a failure cannot take the test run down.
    """
    probe = (
        "import argparse, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from annotator.config import ConfigError, load_settings\n"
        "try:\n"
        "    load_settings(argparse.Namespace(config='/dev/zero'))\n"
        "except ConfigError as e:\n"
        "    print('CONFIG_ERROR', str(e)[:200])\n"
    )
    child_env = {**os.environ, "ANNOTATOR_HOME": str(tmp_path / "home")}
    r = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        timeout=60,
        env=child_env,
        check=False,
    )
    out = r.stdout.decode(errors="replace")
    assert out.startswith("CONFIG_ERROR"), (
        f"exit {r.returncode}; stdout {out[:200]!r}; "
        f"stderr {r.stderr.decode(errors='replace')[-400:]}"
    )


# ---------------------------------------------------------------- keymaps


@FUZZ
@given(name=st.one_of(ODD_PATHS, st.text(max_size=40)))
def test_keymap_names_and_paths(home: Path, name: str) -> None:
    _only_keymap_errors(name)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_keymap_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "bytes.toml"
    path.write_bytes(raw)
    _only_keymap_errors(str(path))


@st.composite
def keymap_documents(draw: st.DrawFn, other: str) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"extends = {toml_value(draw(st.one_of(st.just(other), ODD_PATHS, VALUES)))}")
    if draw(st.booleans()):
        lines.append(f"name = {toml_value(draw(VALUES))}")
    lines.append("[bindings]")
    ids = st.one_of(
        st.sampled_from(["player.toggle", "form.submit", "flag.pii", "nav.next"]),
        st.text(max_size=12),
    )
    for key, value in draw(st.dictionaries(ids, VALUES, max_size=5)).items():
        lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(data=st.data())
def test_keymap_extends_chains(tmp_path: Path, data: st.DataObject) -> None:
    """Two fuzzed files that may extend each other (cycles included), plus fuzzed overrides."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(data.draw(keymap_documents("b.toml")), "utf-8", errors="surrogatepass")
    b.write_text(data.draw(keymap_documents("a.toml")), "utf-8", errors="surrogatepass")
    overrides = data.draw(st.dictionaries(st.text(max_size=12), VALUES, max_size=3))
    _only_keymap_errors(str(a), overrides)


@pytest.mark.parametrize(
    "name", ["~nosuchuser-q7/keys.toml", "/" + "e" * 5000 + ".toml"], ids=["tilde", "long"]
)
def test_keymap_path_that_cannot_be_a_path(home: Path, name: str) -> None:
    _only_keymap_errors(name)


def test_keymap_extends_a_path_that_cannot_be_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(f'extends = "{"f" * 5000}.toml"\n')
    _only_keymap_errors(str(path))
