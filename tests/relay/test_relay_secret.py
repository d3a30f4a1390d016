"""The relay's pairing secret: kept across restarts (0600 file here; keyring elsewhere), rotated
only by `--new-secret`, never weak, and never printed inside a command line."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.relay import protocol as p
from annotator.relay.secret_store import SECRET_FILE, SecretStoreError, load_relay_secret
from tests.fixtures.audio import AlsaFileSink
from tests.fixtures.server import REPO_ROOT, annotator_command
from tests.relay.support import RelayProcess, free_port


def secret_file(home: Path) -> Path:
    return home / "config" / SECRET_FILE


def test_the_secret_is_made_once_kept_0600_and_rotated_on_request(_annotator_home: Path) -> None:
    secret, where, made = load_relay_secret()
    path = secret_file(_annotator_home)
    assert made and where == str(path)
    assert len(secret.replace("-", "")) >= p.MIN_SECRET_CHARS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_relay_secret() == (secret, where, False)
    rotated, _where, made = load_relay_secret(rotate=True)
    assert made and rotated != secret
    assert load_relay_secret()[0] == rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [f.name for f in path.parent.iterdir()] == [SECRET_FILE]  # no temp file left


def test_a_secret_others_could_read_is_replaced_not_used(_annotator_home: Path) -> None:
    secret, _where, _made = load_relay_secret()
    path = secret_file(_annotator_home)
    path.chmod(0o644)
    replaced, _where, made = load_relay_secret()
    assert made and replaced != secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_weak_or_foreign_secret_file_is_not_trusted(_annotator_home: Path) -> None:
    path = secret_file(_annotator_home)
    path.parent.mkdir(parents=True)
    path.write_text("short\n")
    path.chmod(0o600)
    secret, _where, made = load_relay_secret()
    assert made and secret != "short"
    path.unlink()
    path.symlink_to("/etc/hostname")
    with pytest.raises(SecretStoreError, match="not a regular file"):
        load_relay_secret()


def run_relay(
    sink: AlsaFileSink, *args: str, secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = sink.env()
    env.pop(p.SECRET_ENV, None)
    if secret is not None:
        env[p.SECRET_ENV] = secret
    return subprocess.run(
        [*annotator_command(), "relay", "--audio", "none", "--port", str(free_port()), *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_weak_secret_from_the_environment_is_refused(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
) -> None:
    proc = run_relay(make_alsa_file_sink(), secret="hunter2")
    assert proc.returncode == 2
    assert "at least 26 are needed" in proc.stderr and "hunter2" not in proc.stderr
    assert "listening" not in proc.stdout


def test_new_secret_with_a_secret_in_the_environment_says_which_wins(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
) -> None:
    proc = run_relay(make_alsa_file_sink(), "--new-secret", secret=p.new_secret())
    assert proc.returncode == 2
    assert "unset it first" in proc.stderr


def test_the_banner_shows_the_secret_once_and_the_read_rsp_way(
    make_alsa_file_sink: Callable[..., AlsaFileSink], _annotator_home: Path
) -> None:
    relay = RelayProcess(free_port(), make_alsa_file_sink(), audio="none", secret=None).start()
    try:
        secret = relay.shown_secret
        assert secret == secret_file(_annotator_home).read_text().strip()
        banner = "".join(relay.stdout)
        assert banner.count(secret) == 1  # on its own line, never inside a command
        assert f"read -rsp 'relay secret: ' {p.SECRET_ENV}" in banner
        assert f"{p.SECRET_ENV}=" not in banner
        assert "tmux new -A -s annotate" in banner
        assert "--new-secret" in banner
    finally:
        relay.stop()
    assert os.environ.get(p.SECRET_ENV) is None
