"""`annotator doctor` as a real process: each failure is named with its fix and a non-zero exit;
a healthy setup (file-plugin sound card, live server, good token) exits 0."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.audio import write_file_sink, write_no_device
from tests.fixtures.server import REPO_ROOT, LiveServer, annotator_command
from tests.relay.support import SECRET, RelayProcess, free_port

# Wide enough that rich never wraps a cell: the assertions read whole phrases.
WIDE = {"COLUMNS": "1000", "LINES": "50", "TERM": "xterm-256color"}
_DROP = ("SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT", "NO_COLOR", "COLORTERM", "PULSE_SERVER")


def base_env(tmp_path: Path, server: LiveServer | None, *, sound: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_") and k not in _DROP}
    if sound:
        env.update(write_file_sink(tmp_path / "alsa-home").env())
    else:
        env.update(write_no_device(tmp_path / "alsa-home"))
    env.update(WIDE, ANNOTATOR_HOME=str(tmp_path / "home"))
    if server is not None:
        env.update(ANNOTATOR_SERVER=server.url, ANNOTATOR_TOKEN=server.annotator_token)
    return env


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*annotator_command(), "doctor", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def row(out: str, check: str) -> str:
    """The table row for `check` (one line: nothing wraps at this width)."""
    lines = [line for line in out.splitlines() if line.startswith(f"│ {check} ")]
    assert len(lines) == 1, out
    return lines[0]


def make_cache_key(env: dict[str, str]) -> Path:
    code = "from annotator.store.keys import load_cache_key; print(load_cache_key()[1])"
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/python"), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    return Path(proc.stdout.strip())


def test_all_good_exits_zero(tmp_path: Path, live_server: LiveServer) -> None:
    env = base_env(tmp_path, live_server)
    key = make_cache_key(env)
    proc = doctor(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Everything the annotator needs works" in proc.stdout
    for check in ("terminal", "audio", "server", "TLS", "clock", "token", "disk", "keymap"):
        assert "│ ok " in row(proc.stdout, check), check
    assert "played a 200 ms tone" in row(proc.stdout, "audio")
    assert f"{key} (0600)" in row(proc.stdout, "cache key")
    assert live_server.annotator_token not in proc.stdout + proc.stderr
    # The tone really reached the (file-plugin) sound card: 200 ms of 48 kHz stereo int16.
    captured = (tmp_path / "alsa-home" / "capture.raw").read_bytes()
    assert len(captured) == 9600 * 2 * 2 and any(captured)


def test_missing_audio_device_is_reported_with_its_fix(
    tmp_path: Path, live_server: LiveServer
) -> None:
    proc = doctor(base_env(tmp_path, live_server, sound=False))
    assert proc.returncode == 1
    audio = row(proc.stdout, "audio")
    assert "FAIL" in audio and "ALSA cannot open" in audio and "aplay -l" in audio
    assert "Traceback" not in proc.stderr


def test_wrong_token_is_reported_without_showing_it(
    tmp_path: Path, live_server: LiveServer
) -> None:
    env = base_env(tmp_path, live_server)
    env["ANNOTATOR_TOKEN"] = "not-a-real-token-5f3a9c"
    proc = doctor(env)
    assert proc.returncode == 1
    token = row(proc.stdout, "token")
    assert "FAIL" in token
    assert "token rejected: create a new one with `annotator token create" in token
    assert "│ ok " in row(proc.stdout, "server")
    assert "not-a-real-token-5f3a9c" not in proc.stdout + proc.stderr


def test_unreachable_server_is_reported(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, never listening: connections are refused
        env = base_env(tmp_path, None)
        env.update(ANNOTATOR_SERVER=f"http://127.0.0.1:{closed}", ANNOTATOR_TOKEN="whatever-123")
        proc = doctor(env)
    assert proc.returncode == 1
    server = row(proc.stdout, "server")
    assert "FAIL" in server and "cannot reach" in server and "check the URL" in server


def test_plain_http_to_a_remote_server_is_refused(tmp_path: Path) -> None:
    env = base_env(tmp_path, None)
    env.update(ANNOTATOR_SERVER="http://queue.example.org", ANNOTATOR_TOKEN="whatever-123")
    proc = doctor(env)
    assert proc.returncode == 1
    assert "refusing plain http://" in row(proc.stdout, "server")


def test_bad_keymap_is_reported_with_file_and_id(tmp_path: Path, live_server: LiveServer) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[bindings]\n"player.toggel" = "f6"\n')
    proc = doctor(base_env(tmp_path, live_server), "--keymap", str(bad))
    assert proc.returncode == 1
    keymap = row(proc.stdout, "keymap")
    assert "FAIL" in keymap and str(bad) in keymap and "player.toggel" in keymap


def test_config_error_is_a_failed_check_not_a_traceback(tmp_path: Path) -> None:
    env = base_env(tmp_path, None)
    config = tmp_path / "home" / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('sever = "https://x"\n')
    proc = doctor(env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    line = row(proc.stdout, "config")
    assert "FAIL" in line and "unknown setting 'sever'" in line


def test_small_terminal_fails(tmp_path: Path, live_server: LiveServer) -> None:
    env = base_env(tmp_path, live_server)
    env.update(COLUMNS="70", LINES="20")
    proc = doctor(env)
    assert proc.returncode == 1
    assert "enlarge" in proc.stdout


@pytest.mark.parametrize("secret_ok", [True, False])
def test_relay_audio_is_checked_end_to_end(
    tmp_path: Path, live_server: LiveServer, secret_ok: bool
) -> None:
    relay = RelayProcess(free_port(), write_file_sink(tmp_path / "laptop"), audio="none").start()
    try:
        env = base_env(tmp_path, live_server, sound=False)
        env.update(
            SSH_CONNECTION="192.0.2.7 50000 192.0.2.1 22",
            ANNOTATOR_RELAY=f"127.0.0.1:{relay.port}",
            ANNOTATOR_RELAY_SECRET=SECRET if secret_ok else "wrong-wrong-wrong",
        )
        proc = doctor(env, "--audio", "relay")
    finally:
        relay.stop()
    audio = row(proc.stdout, "audio")
    assert "SSH session from 192.0.2.7" in row(proc.stdout, "session")
    for secret in (SECRET, "wrong-wrong-wrong"):
        assert secret not in proc.stdout + proc.stderr
    if secret_ok:
        assert proc.returncode == 0, proc.stdout
        assert "relay at 127.0.0.1" in audio and "played a 200 ms tone" in audio
    else:
        assert proc.returncode == 1
        assert "refused the pairing secret" in audio


def test_a_token_in_a_config_file_others_can_read_is_a_failure_with_its_fix(
    tmp_path: Path, live_server: LiveServer
) -> None:
    env = base_env(tmp_path, None)
    config = tmp_path / "home" / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'server = "{live_server.url}"\ntoken = "{live_server.annotator_token}"\n')
    config.chmod(0o644)
    proc = doctor(env)
    assert proc.returncode == 1
    line = row(proc.stdout, "config")
    assert "FAIL" in line and "other users can read it" in line
    assert f"chmod 600 {config}" in proc.stdout
    assert live_server.annotator_token not in proc.stdout
    config.chmod(0o600)
    fixed = row(doctor(env).stdout, "config")
    assert "FAIL" not in fixed and "read" in fixed
