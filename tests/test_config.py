"""Settings: precedence of flags, environment, config.toml and defaults; errors that say where."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotator.cli import build_parser
from annotator.config import ConfigError, Settings, config_path, load_settings
from annotator.keymap import KeymapError, load_keymap


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("ANNOTATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def error_of(args: argparse.Namespace | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(args)
    return str(info.value)


def test_defaults_without_a_config_file() -> None:
    s = load_settings()
    assert s.server is None and s.token is None
    assert (s.audio, s.keymap, s.keys) == ("auto", "default", {})
    assert (s.seek_seconds, s.speed_step, s.prefetch) == (2.0, 0.25, 3)
    assert (s.daily_target, s.shift_hours, s.draft_debounce_s, s.lease_ttl_s) == (
        1000,
        9.0,
        0.5,
        300,
    )
    assert s.source_file is None


def test_every_field_is_documented() -> None:
    assert all(f.description for f in Settings.model_fields.values())


def test_precedence_flags_over_env_over_file_over_defaults(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text(
        'server = "http://file.example"\naudio = "none"\nkeymap = "vim"\nprefetch = 7\n'
    )
    monkeypatch.setenv("ANNOTATOR_SERVER", "http://env.example")
    monkeypatch.setenv("ANNOTATOR_AUDIO", "miniaudio")
    args = build_parser().parse_args(["--server", "https://flag.example/"])
    s = load_settings(args)
    assert s.server == "https://flag.example"  # flag (trailing slash dropped)
    assert s.audio == "miniaudio"  # env beats file
    assert s.keymap == "vim"  # file beats default
    assert s.prefetch == 7
    assert s.seek_seconds == 2.0  # default
    assert s.source_file == config


def test_absent_store_true_flag_does_not_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_INSECURE", "1")
    assert load_settings(build_parser().parse_args([])).insecure is True
    monkeypatch.delenv("ANNOTATOR_INSECURE")
    assert load_settings(build_parser().parse_args(["--insecure"])).insecure is True


def test_subcommand_namespaces_without_client_options_work() -> None:
    assert load_settings(build_parser().parse_args(["purge", "--yes"])).server is None


def test_explicit_config_path(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("daily_target = 800\n")
    args = build_parser().parse_args(["--config", str(path)])
    assert config_path(args) == path
    assert load_settings(args).daily_target == 800
    missing = build_parser().parse_args(["--config", str(tmp_path / "nope.toml")])
    assert "config file not found" in error_of(missing)


def test_wrong_type_names_file_line_field_and_fix(config: Path) -> None:
    config.write_text('server = "http://127.0.0.1:8700"\n\nprefetch = "lots"\n')
    message = error_of()
    assert message.startswith(f"{config} line 3: prefetch: Input should be a valid integer")
    assert "(got 'lots')" in message
    assert message.endswith("— fix the value or remove the line")


def test_out_of_range_and_bad_url(config: Path) -> None:
    config.write_text('seek_seconds = 60\nserver = "queue.example"\n')
    message = error_of()
    assert f"{config} line 1: seek_seconds: Input should be less than or equal to 30" in message
    assert f"{config} line 2: server: Value error, must be an http:// or https:// URL" in message


def test_malformed_toml_names_the_line(config: Path) -> None:
    config.write_text('server = "http://x"\nprefetch = = 3\n')
    assert error_of().startswith(f"{config} line 2: malformed TOML:")


def test_unknown_key_is_an_error_with_a_suggestion(config: Path) -> None:
    config.write_text("prefetch = 2\nprefech = 0\n")
    assert error_of() == f"{config} line 2: unknown setting 'prefech' — did you mean 'prefetch'?"


def test_env_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATOR_PREFETCH", "lots")
    assert error_of().startswith("environment ANNOTATOR_PREFETCH: prefetch: Input should be")
    monkeypatch.delenv("ANNOTATOR_PREFETCH")
    monkeypatch.setenv("ANNOTATOR_KEYS", "{not json")
    assert error_of().startswith("environment ANNOTATOR_KEYS: not valid JSON")


def test_missing_ca_bundle_and_bad_relay(config: Path, tmp_path: Path) -> None:
    config.write_text(f'ca_bundle = "{tmp_path}/ca.pem"\nrelay = "laptop"\n')
    message = error_of()
    assert f"{config} line 1: ca_bundle: Path does not point to a file" in message
    assert f"{config} line 2: relay: Value error, must be host:port" in message
    (tmp_path / "ca.pem").write_text("pem")
    config.write_text(f'ca_bundle = "{tmp_path}/ca.pem"\nrelay = "127.0.0.1:47001"\n')
    assert load_settings().relay == "127.0.0.1:47001"


def test_token_is_never_shown(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text('relay_secret = "relay-s3cret"\n')
    monkeypatch.setenv("ANNOTATOR_TOKEN", "tok-s3cret")
    s = load_settings()
    assert s.token is not None and s.token.get_secret_value() == "tok-s3cret"
    for text in (repr(s), str(s), f"{s}", repr(s.model_dump())):
        assert "tok-s3cret" not in text and "relay-s3cret" not in text
    config.write_text("token = 12345678\n")  # a wrong type must not echo the value either
    monkeypatch.delenv("ANNOTATOR_TOKEN")
    message = error_of()
    assert "token" in message and "12345678" not in message


def test_key_overrides_reach_the_keymap_with_config_lines(config: Path) -> None:
    config.write_text('keymap = "pedal"\n[keys]\nform.submit = "f12"\n"form.undo" = ["alt+q"]\n')
    s = load_settings()
    assert s.keys == {"form.submit": "f12", "form.undo": ["alt+q"]}
    assert s.source_file is not None
    keymap = load_keymap(s.keymap, s.keys, overrides_source=str(s.source_file))
    assert keymap.keys_for("form.submit") == ["f12"]
    config.write_text('[keys]\n"player.toggle" = "f2"\n')  # f2 is seek back in the default
    s = load_settings()
    with pytest.raises(KeymapError, match=rf"{config} line 2: 'f2' is bound to both"):
        load_keymap(s.keymap, s.keys, overrides_source=str(s.source_file))


_TOML_ISH = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "server = ",
                "token = ",
                "prefetch = ",
                "seek_seconds = ",
                "audio = ",
                "keys = ",
                "[keys]",
                '"form.submit" = ',
                "insecure = ",
                "relay = ",
                "ca_bundle = ",
                "unknown = ",
                "[",
                "",
            ]
        ),
        st.one_of(
            st.just(""),
            st.integers().map(str),
            st.floats(allow_nan=False).map(repr),
            st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
            st.sampled_from(["true", "{}", "[1, 2]", '"http://x"', '"1.2.3.4:5"', "inf", "nan"]),
        ),
    ),
    max_size=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=_TOML_ISH, noise=st.text(max_size=20))
def test_config_loader_raises_only_config_errors(
    config: Path, lines: list[tuple[str, str]], noise: str
) -> None:
    text = "\n".join(a + b for a, b in lines) + "\n" + noise
    config.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        s = load_settings()
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(s, Settings)
