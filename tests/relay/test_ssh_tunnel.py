"""The contractor's setup for real: a relay on the "laptop", an OpenSSH server as the "host",
and the remote side reaching the relay only through `ssh -R`."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from annotator.audio.decode import decode
from tests.audio.clips import encode, sweep, tone
from tests.fixtures.audio import AlsaFileSink
from tests.fixtures.server import REPO_ROOT, LiveServer, write_wavs
from tests.relay.sshd import Sshd
from tests.relay.support import SECRET, RelayProcess, free_port, settled_capture, wait_for

pytestmark = pytest.mark.slow


def write_clips(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    first = directory / "first.flac"
    first.write_bytes(encode(sweep(1.2, 16000), 16000, "FLAC"))
    second = directory / "second.wav"
    second.write_bytes(encode(tone(330.0, 0.8, 22050), 22050, "WAV", "PCM_16"))
    return [first, second]


def test_two_clips_through_the_tunnel_play_exactly_their_audio_on_the_laptop(
    sshd: Sshd,
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    tmp_path: Path,
) -> None:
    sink = make_alsa_file_sink()
    relay = RelayProcess(free_port(), sink, audio="simpleaudio").start()
    try:
        clips = write_clips(tmp_path / "host-clips")
        remote_port = free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "ANNOTATOR_RELAY": f"127.0.0.1:{remote_port}",
            "ANNOTATOR_RELAY_SECRET": SECRET,
            "ANNOTATOR_HOME": str(tmp_path / "remote-home"),
        }
        remote = f"cd {REPO_ROOT} && .venv/bin/python -m tests.relay.remote_play " + " ".join(
            str(c) for c in clips
        )
        cmd = sshd.ssh_command(remote, forward=f"{remote_port}:127.0.0.1:{relay.port}")
        assert SECRET not in " ".join(cmd)
        results = play_remotely(cmd, env, clips, sink, relay)
        assert [r["drained"] for r in results] == [True, True], results
        assert all(r["connected"] for r in results), results
        assert wait_for(lambda: "annotator connected from 127.0.0.1" in relay.log, 5)
        assert SECRET not in relay.log
        print(
            "ssh tunnel first frame (estimated, ms):", [round(r["started_ms"], 2) for r in results]
        )
    finally:
        relay.stop()


def play_remotely(
    cmd: list[str],
    env: dict[str, str],
    clips: list[Path],
    sink: AlsaFileSink,
    relay: RelayProcess,
) -> list[dict[str, Any]]:
    """Run the remote player; after each clip, the laptop's device got exactly that clip.

    ALSA's file plugin rewrites its file for every stream, so each clip is checked before the
    remote side is told to go on.
    """
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    results = []
    try:
        for clip in clips:
            line = proc.stdout.readline()
            assert line.startswith("{"), line + (proc.stderr.read() if proc.stderr else "")
            results.append(json.loads(line))
            expected = decode(clip.read_bytes()).samples.tobytes()
            assert settled_capture(sink) == expected, clip.name
            proc.stdin.write("next\n")
            proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return results


def open_tunnel(sshd: Sshd, remote_port: int, relay_port: int) -> subprocess.Popen[bytes]:
    """`ssh -N -R`, retried while sshd still holds the port from the previous tunnel."""
    for _ in range(20):
        proc = subprocess.Popen(
            sshd.ssh_command(forward=f"{remote_port}:127.0.0.1:{relay_port}", no_command=True),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if wait_for(lambda: tunnel_up(remote_port), 3):
            return proc
        proc.kill()
        proc.wait()
    raise AssertionError("the ssh tunnel did not come up")


def tunnel_up(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_tunnel_dropped_mid_clip_mutes_then_recovers_by_itself(
    sshd: Sshd, make_alsa_file_sink: Callable[..., AlsaFileSink]
) -> None:
    # The TUI lives on the host (in tmux, say) and outlives the ssh connection: here it is this
    # process, reaching the laptop's relay only through sshd's forwarded port.
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip

    first_sink = make_alsa_file_sink()
    relay = RelayProcess(free_port(), first_sink, audio="simpleaudio").start()
    remote_port = free_port()
    tunnel = open_tunnel(sshd, remote_port, relay.port)
    player = RelayPlayer(f"127.0.0.1:{remote_port}", SECRET)
    try:
        audio = clip(8.0)
        player.load(audio)
        player.play()
        assert wait_for(lambda: player.last_started is not None, 10), player.status

        tunnel.kill()
        tunnel.wait()
        assert wait_for(lambda: not player.connected, 8), player.status
        # The relay silenced its device; what the device gets from now on is the resumed stream.
        time.sleep(0.2)
        first_sink.capture.unlink()
        position = player.position
        assert wait_for(lambda: player.position > position + 0.2, 2)
        assert player.playing

        tunnel = open_tunnel(sshd, remote_port, relay.port)
        assert wait_for(lambda: player.connected, 10), player.status
        assert wait_for(lambda: relay.log.count("annotator connected") == 2, 5), relay.output
        # simpleaudio rewrote the capture for the resumed stream: the rest of the clip.
        resumed_at = player.position
        full = audio.samples.tobytes()
        got = settled_capture(first_sink)
        assert 0 < len(got) < len(full), (len(got), resumed_at)
        assert full.endswith(got)
        assert abs((len(full) - len(got)) / 2 / audio.sample_rate - resumed_at) < 0.3
    finally:
        player.close()
        tunnel.kill()
        tunnel.wait()
        relay.stop()


def test_tunnel_without_a_relay_behind_it_says_so_then_connects_when_it_starts(
    sshd: Sshd, make_alsa_file_sink: Callable[..., AlsaFileSink]
) -> None:
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip

    relay_port, remote_port = free_port(), free_port()
    tunnel = open_tunnel(sshd, remote_port, relay_port)
    player = RelayPlayer(f"127.0.0.1:{remote_port}", SECRET)
    relay = RelayProcess(relay_port, make_alsa_file_sink(), audio="none")
    try:
        player.load(clip(1.0))
        assert wait_for(lambda: "no relay answers behind it" in player.status, 10), player.status
        relay.start()
        assert wait_for(lambda: player.connected, 10), player.status
    finally:
        player.close()
        tunnel.kill()
        tunnel.wait()
        relay.stop()


def relay_backend_wired() -> bool:
    """True once `open_player("relay")` hands out a RelayPlayer (the lead wires backends.py)."""
    import os as _os

    from annotator.audio.backends import open_player
    from annotator.relay.player import RelayPlayer

    saved = {k: _os.environ.get(k) for k in ("ANNOTATOR_RELAY", "ANNOTATOR_RELAY_SECRET")}
    _os.environ.update(ANNOTATOR_RELAY="127.0.0.1:9", ANNOTATOR_RELAY_SECRET="probe")
    try:
        player, _reason = open_player("relay")
        player.close()
        return isinstance(player, RelayPlayer)
    finally:
        for key, value in saved.items():
            if value is None:
                _os.environ.pop(key, None)
            else:
                _os.environ[key] = value


def remote_annotator_command() -> str:
    return f"cd {REPO_ROOT} && exec .venv/bin/annotator --audio relay"


@pytest.mark.tmux
def test_tui_over_ssh_in_tmux_plays_each_annotated_clip_on_the_laptop(
    sshd: Sshd,
    live_server: LiveServer,
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    tmp_path: Path,
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip(reason="tmux is not installed")
    assert relay_backend_wired(), "open_player must offer the 'relay' backend"
    wavs = write_wavs(tmp_path / "clips", 2)
    live_server.ingest(wavs)
    expected = {decode(w.read_bytes()).samples.tobytes() for w in wavs}

    sink = make_alsa_file_sink()
    relay = RelayProcess(free_port(), sink, audio="simpleaudio").start()
    remote_port = free_port()
    # Secrets reach the TUI through the environment only: tmux's server inherits this
    # environment, ssh forwards ANNOTATOR_* (SendEnv/AcceptEnv). No argv carries them.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "ANNOTATOR_HOME": str(tmp_path / "remote-home"),
        "ANNOTATOR_SERVER": live_server.url,
        "ANNOTATOR_TOKEN": live_server.annotator_token,
        "ANNOTATOR_RELAY": f"127.0.0.1:{remote_port}",
        "ANNOTATOR_RELAY_SECRET": SECRET,
    }
    ssh = sshd.ssh_command(
        remote_annotator_command(),
        forward=f"{remote_port}:127.0.0.1:{relay.port}",
        tty=True,
    )
    command = " ".join(shlex.quote(part) for part in ssh)
    assert SECRET not in command and live_server.annotator_token not in command
    tmux = ["tmux", "-L", f"annotator-relay-{uuid.uuid4().hex[:8]}"]

    def keys(*names: str, literal: bool = False) -> None:
        flag = ["-l"] if literal else []
        subprocess.run([*tmux, "send-keys", "-t", "tui", *flag, *names], check=True)
        time.sleep(0.2)

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "tui"], capture_output=True, text=True, check=False
        ).stdout

    played: list[bytes] = []
    try:
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", "tui", "-x", "120", "-y", "40", command],
            env=env,
            check=True,
        )
        assert wait_for(lambda: "#1  clip" in screen(), 60), screen() + relay.output
        for n in (1, 2):
            # The clip auto-plays on arrival: the laptop's device gets exactly its audio.
            assert wait_for(lambda: settled_capture(sink) not in played, 15), relay.output
            played.append(settled_capture(sink))
            keys("M-C")
            keys(f"clip number {n}", literal=True)
            keys("C-l")
            keys("alarmset", literal=True)
            keys("Enter")
            keys("C-s")
            if n == 1:
                assert wait_for(lambda: "#2  clip" in screen(), 30), screen()
        assert set(played) == expected
        assert "relay" in screen().lower()
        keys("C-q")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        relay.stop()
    assert SECRET not in relay.log and live_server.annotator_token not in relay.log


async def test_annotate_screen_banner_follows_the_relay_link(
    make_alsa_file_sink: Callable[..., AlsaFileSink], tmp_path: Path
) -> None:
    """The TUI's side of a dropped tunnel: a banner with the player's status while the relay is
    gone (muted, reconnecting), cleared by itself when the relay is back; the status bar names
    the backend and why it was chosen."""
    from annotator.relay.player import RelayPlayer
    from tests.tui.fakes import make_app, ready_clip
    from tests.tui.helpers import annotate_screen, wait_until

    port = free_port()
    relay = RelayProcess(port, make_alsa_file_sink(), audio="none").start()
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    app.services.player = RelayPlayer(f"127.0.0.1:{port}", SECRET)
    app.services.player_reason = f"relay to 127.0.0.1:{port} (your laptop's `annotator relay`)"
    try:
        async with app.run_test(size=(140, 32)) as pilot:
            screen = annotate_screen(app)
            banner = screen.query_one("#banner")

            def shown() -> bool:
                return banner.has_class("-shown")

            await wait_until(pilot, lambda: screen.current is not None)
            await wait_until(pilot, lambda: app.services.player.connected, 10)  # type: ignore[attr-defined]
            bar = str(screen.stats.render())
            assert f"audio relay (relay to 127.0.0.1:{port}" in bar, bar
            await pilot.pause(1.2)
            assert not shown()

            relay.kill()
            await wait_until(pilot, shown, 10)
            text = str(banner.render())
            assert "relay" in text and "muted" in text, text

            relay = RelayProcess(port, make_alsa_file_sink(), audio="none").start()
            await wait_until(pilot, lambda: not shown(), 15)
            assert app.services.player.connected
    finally:
        app.services.player.close()
        relay.stop()


def test_restarted_relay_is_heard_again_within_2_s_with_the_same_secret(
    sshd: Sshd, make_alsa_file_sink: Callable[..., AlsaFileSink]
) -> None:
    """The laptop's relay dies (closed lid, Ctrl-C) and starts again: it keeps its secret, and
    the annotator on the host plays through it again by itself — no restart, no new secret."""
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip

    relay = RelayProcess(free_port(), make_alsa_file_sink(), audio="simpleaudio", secret=None)
    relay.start()
    secret = relay.shown_secret
    assert "(new)" in relay.output
    remote_port = free_port()
    tunnel = open_tunnel(sshd, remote_port, relay.port)
    player = RelayPlayer(f"127.0.0.1:{remote_port}", secret)
    try:
        player.load(clip(1.0))
        player.play()
        assert wait_for(lambda: player.last_started is not None, 10), player.status
        relay.kill()
        assert wait_for(lambda: not player.connected, 8), player.status
        time.sleep(2.0)  # the link is deep in its backoff by now

        sink = make_alsa_file_sink()
        relay = RelayProcess(relay.port, sink, audio="simpleaudio", secret=None).start()
        back_at = time.monotonic()
        assert relay.shown_secret == secret
        assert "the same as last time" in relay.output
        # What the annotator hears first is the clip it is on, from where its playhead is now.
        assert wait_for(lambda: player.connected, 5), player.status
        took = time.monotonic() - back_at
        print(f"relay restart → the annotator paired again: {took * 1000:.0f} ms")
        assert took < 2.0
        audio = clip(1.0)
        player.load(audio)
        player.play()
        assert wait_for(lambda: player.last_started is not None, 5), player.status
        last = player.last_started
        assert last is not None and last.relay_at - back_at < 2.0  # heard again within 2 s
        assert settled_capture(sink) == audio.samples.tobytes()
        assert secret not in relay.log
    finally:
        player.close()
        tunnel.kill()
        tunnel.wait()
        relay.stop()


async def test_re_pair_in_place_after_new_secret_keeps_the_clip_and_the_draft(
    sshd: Sshd, make_alsa_file_sink: Callable[..., AlsaFileSink], tmp_path: Path
) -> None:
    """`annotator relay --new-secret` on the laptop: the TUI on the host says it is muted and
    why, ctrl+r opens a masked prompt, the new secret pairs it again on the same clip with the
    same draft."""
    from textual.widgets import Input

    from annotator.relay.player import RelayPlayer
    from annotator.screens.relay_pair import RelayPairScreen
    from tests.tui.fakes import make_app, ready_clip
    from tests.tui.helpers import annotate_screen, wait_until

    relay = RelayProcess(free_port(), make_alsa_file_sink(), audio="none", secret=None).start()
    old_secret = relay.shown_secret
    remote_port = free_port()
    tunnel = open_tunnel(sshd, remote_port, relay.port)
    app = make_app(tmp_path, [ready_clip(1), ready_clip(2)])
    player = RelayPlayer(f"127.0.0.1:{remote_port}", old_secret)
    app.services.player = player
    app.services.player_reason = f"relay to 127.0.0.1:{remote_port} (your laptop's relay)"
    try:
        async with app.run_test(size=(160, 32)) as pilot:
            screen = annotate_screen(app)
            await wait_until(pilot, lambda: screen.current is not None)
            await wait_until(pilot, lambda: player.connected, 10)
            await pilot.press(*"half typed")
            current = screen.current
            assert current is not None
            assert screen.transcript.text.endswith("half typed")
            draft = screen.transcript.text

            relay.stop()
            relay = RelayProcess(
                relay.port, make_alsa_file_sink(), audio="none", secret=None, args=["--new-secret"]
            ).start()
            new_secret = relay.shown_secret
            assert new_secret != old_secret and "(new)" in relay.output
            await wait_until(pilot, lambda: player.needs_secret, 10)
            await wait_until(
                pilot,
                lambda: "relay: muted (wrong pairing secret)" in str(screen.stats.render()),
                5,
            )
            banner = str(screen.query_one("#banner").render())
            assert "refused the pairing secret" in banner and "ctrl+r" in banner, banner

            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: isinstance(app.screen, RelayPairScreen))
            field = app.screen.query_one(Input)
            assert field.password  # the secret is never shown
            field.insert_text_at_cursor(new_secret)
            await pilot.press("enter")
            await wait_until(pilot, lambda: player.connected, 10)
            await wait_until(pilot, lambda: "audio relay (relay to" in str(screen.stats.render()))
            assert screen.current is current
            assert screen.transcript.text == draft
            assert app.screen is screen
            assert new_secret not in relay.log and old_secret not in relay.log
    finally:
        player.close()
        tunnel.kill()
        tunnel.wait()
        relay.stop()


def test_doctor_on_the_host_leaves_a_paired_annotators_sound_untouched(
    sshd: Sshd, make_alsa_file_sink: Callable[..., AlsaFileSink]
) -> None:
    """doctor runs over ssh while the annotator plays: the annotator keeps the sound (its clip
    reaches the device whole, it is never displaced), doctor's tone plays once the device is
    free, and the annotator's next clip plays as before."""
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip

    sink = make_alsa_file_sink(append=True)  # a file per device open: the clip's, the tone's
    relay = RelayProcess(free_port(), sink, audio="simpleaudio").start()
    remote_port = free_port()
    tunnel = open_tunnel(sshd, remote_port, relay.port)
    player = RelayPlayer(f"127.0.0.1:{remote_port}", SECRET)
    env = {
        "PATH": "/usr/bin:/bin",
        "ANNOTATOR_RELAY": f"127.0.0.1:{remote_port}",
        "ANNOTATOR_RELAY_SECRET": SECRET,
        "ANNOTATOR_HOME": str(sink.home / "remote-home"),
    }
    remote = f"cd {REPO_ROOT} && COLUMNS=1000 exec .venv/bin/annotator doctor --audio relay"
    try:
        first, second = clip(2.5), clip(1.0)
        player.load(first)
        player.play()
        assert wait_for(lambda: player.last_started is not None, 10), player.status
        doctor = subprocess.run(
            sshd.ssh_command(remote), env=env, capture_output=True, text=True, timeout=60
        )
        audio = [line for line in doctor.stdout.splitlines() if line.startswith("│ audio ")]
        assert len(audio) == 1 and "played a 200 ms tone" in audio[0], doctor.stdout
        assert player.connected, player.status
        assert "replaces" not in relay.log, relay.log
        assert "doctor's probe connected" in relay.log, relay.log

        player.load(second)
        player.play()
        assert wait_for(lambda: player.last_started is not None, 10), player.status
        assert wait_for(lambda: not player.playing, 5)
        settled_capture(sink)
        opened = sorted(sink.capture.parent.glob(sink.capture.name + "*"))
        assert len(opened) == 3, [f.name for f in opened]
        assert opened[0].read_bytes() == first.samples.tobytes()  # whole, not cut by the tone
        tone = opened[1].read_bytes()
        assert len(tone) == 2 * 2 * 48000 * 0.2  # doctor's 200 ms of 48 kHz stereo
        assert opened[2].read_bytes() == second.samples.tobytes()
    finally:
        player.close()
        tunnel.kill()
        tunnel.wait()
        relay.stop()
