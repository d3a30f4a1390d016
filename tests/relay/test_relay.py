"""The relay end to end on loopback: a real `annotator relay` process playing into ALSA's file
plugin, and a RelayPlayer in this process doing what the TUI does."""

from __future__ import annotations

import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import pytest

from annotator.audio.stretch import stretch
from annotator.relay import protocol as p
from annotator.relay.player import RelayPlayer
from tests.fixtures.audio import AlsaFileSink
from tests.fixtures.server import REPO_ROOT, annotator_command
from tests.relay.support import (
    SECRET,
    RelayProcess,
    clip,
    free_port,
    settled_capture,
    wait_for,
)

BACKENDS = ["simpleaudio", "miniaudio"]
# What a keypress may add on loopback before the laptop's device has the first frame.
LATENCY_BUDGET_S = 0.030


@pytest.fixture
def players() -> Iterator[Callable[..., RelayPlayer]]:
    made: list[RelayPlayer] = []

    def make(port: int, secret: str = SECRET) -> RelayPlayer:
        player = RelayPlayer(f"127.0.0.1:{port}", secret)
        made.append(player)
        return player

    yield make
    for player in made:
        player.close()


@pytest.fixture
def relays() -> Iterator[Callable[..., RelayProcess]]:
    made: list[RelayProcess] = []

    def make(sink: AlsaFileSink, *, port: int | None = None, **kwargs: object) -> RelayProcess:
        relay = RelayProcess(port or free_port(), sink, **kwargs)  # type: ignore[arg-type]
        made.append(relay)
        return relay.start()

    yield make
    for relay in made:
        relay.stop()


def assert_device_got(sink: AlsaFileSink, backend: str, expected: bytes) -> None:
    got = settled_capture(sink)
    assert len(got) >= len(expected), f"the device got {len(got)} of {len(expected)} bytes"
    if backend == "simpleaudio":
        assert got == expected
    else:
        # miniaudio plays silence after the clip until the player stops the device.
        assert got[: len(expected)] == expected
        assert not any(got[len(expected) :])


def connected(player: RelayPlayer, timeout: float = 10.0) -> None:
    assert wait_for(lambda: player.connected, timeout), player.status


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_reaches_the_laptop_device_byte_for_byte(
    backend: str,
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    sink = make_alsa_file_sink()
    relay = relays(sink, audio=backend)
    audio = clip(1.5, 22050, channels=2)
    player = players(relay.port)
    player.load(audio)
    connected(player)
    started = time.monotonic()
    player.play()
    assert wait_for(lambda: player.last_started is not None, 5), relay.output
    assert player.first_frame_at is not None
    assert_device_got(sink, backend, audio.samples.tobytes())
    last = player.last_started
    assert last is not None and last.relay_at > started


def test_seek_and_speed_play_exactly_the_rendered_audio(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    sink = make_alsa_file_sink()
    relay = relays(sink, audio="simpleaudio")
    audio = clip(2.0)
    player = players(relay.port)

    player.load(audio)
    player.seek(0.5)
    player.play()
    assert_device_got(sink, "simpleaudio", audio.samples[8000:].tobytes())
    sink.capture.unlink()

    player.load(audio)
    player.set_speed(1.5)
    assert player.wait_idle(10)
    player.play()
    assert_device_got(sink, "simpleaudio", stretch(audio.samples, 1.5).tobytes())
    assert player.audible_speed == 1.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_latency_keypress_to_laptop_device(
    backend: str,
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    """play() here → the relay's device has the first frame, on one machine's monotonic clock."""
    sink = make_alsa_file_sink()
    relay = relays(sink, audio=backend)
    player = players(relay.port)
    samples: list[float] = []
    for i in range(15):
        player.load(clip(0.5, 16000))
        if i == 0:
            connected(player)
        time.sleep(0.05)  # the next clip arrives a moment before its auto-play
        started = time.monotonic()
        player.play()
        assert wait_for(lambda: player.last_started is not None, 5, step=0.0005), (
            f"play #{i}: {player.status}\n{relay.output}"
        )
        last = player.last_started
        assert last is not None
        samples.append(last.relay_at - started)
        player.stop()
    p50 = statistics.median(samples)
    print(
        f"relay keypress→device on loopback ({backend}): "
        f"p50 {p50 * 1000:.2f} ms, max {max(samples) * 1000:.2f} ms"
    )
    assert p50 < LATENCY_BUDGET_S
    assert max(samples) < 3 * LATENCY_BUDGET_S


def test_wrong_secret_is_refused_logged_and_never_retried(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    sink = make_alsa_file_sink()
    relay = relays(sink, audio="simpleaudio")
    wrong = "wrong-secr-et99-9999"
    player = players(relay.port, secret=wrong)
    player.load(clip(0.5))
    player.play()
    assert wait_for(lambda: "refused the pairing secret" in player.status, 10), player.status
    assert not player.connected
    assert wait_for(lambda: "wrong pairing secret" in relay.log, 5), relay.output
    time.sleep(0.5)
    assert relay.log.count("wrong pairing secret") == 1  # no retry storm against the limiter
    for secret in (wrong, SECRET):
        for form in (secret, secret.replace("-", "")):
            assert form not in relay.output
    assert sink.read() == b""


def test_a_client_that_does_not_pair_gets_nothing(
    make_alsa_file_sink: Callable[..., AlsaFileSink], relays: Callable[..., RelayProcess]
) -> None:
    relay = relays(make_alsa_file_sink(), audio="none")
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        kind, payload = p.recv_frame(sock)
        assert kind == p.Msg.HELLO
        p.send_frame(sock, p.Msg.AUTH, p.AUTH.pack(b"n" * 32, b"m" * 32, p.Mode.TAKE_OVER))
        kind, payload = p.recv_frame(sock)
        assert kind == p.Msg.REFUSED and payload[0] == p.Refusal.BAD_SECRET
        with pytest.raises(p.ConnectionClosed):
            p.recv_frame(sock)
    assert wait_for(lambda: "wrong pairing secret" in relay.log, 5)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_non_loopback_bind_is_refused(host: str, tmp_path: object) -> None:
    port = free_port()
    proc = subprocess.run(
        [*annotator_command(), "relay", "--host", host, "--port", str(port), "--audio", "none"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "loopback only" in proc.stderr
    assert "pairing secret" not in proc.stdout
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_relay_killed_mid_clip_then_back_resumes_where_the_playhead_is(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    first_sink = make_alsa_file_sink()
    relay = relays(first_sink, audio="simpleaudio")
    audio = clip(8.0)
    player = players(relay.port)
    player.load(audio)
    player.play()
    assert wait_for(lambda: player.last_started is not None, 10), player.status

    relay.kill()
    assert wait_for(lambda: not player.connected, 8), player.status
    assert "muted" in player.status
    before = player.position
    time.sleep(0.3)
    assert player.playing
    assert player.position > before + 0.2  # the playhead keeps moving while muted

    second_sink = make_alsa_file_sink()
    relays(second_sink, port=relay.port, audio="simpleaudio")
    assert wait_for(lambda: player.connected, 10), player.status
    resumed_at = player.position
    assert resumed_at < audio.duration_s - 1.0, "the test clip is too short for this machine"
    full = audio.samples.tobytes()
    got = settled_capture(second_sink)
    # The laptop plays the rest of the clip from where the playhead was at reconnection.
    assert full.endswith(got)
    start_s = (len(full) - len(got)) / 2 / audio.sample_rate
    assert abs(start_s - resumed_at) < 0.3, (start_s, resumed_at)


def test_a_newer_session_takes_over_and_the_old_one_takes_the_sound_back_when_it_leaves(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    relay = relays(make_alsa_file_sink(), audio="none")
    old, new = players(relay.port), players(relay.port)
    old.load(clip(0.5))
    connected(old)
    new.load(clip(0.5))
    connected(new)
    assert wait_for(lambda: "another annotator session" in old.status, 5), old.status
    time.sleep(1.0)
    assert new.connected and not old.connected, (new.status, old.status)  # no tug of war
    assert wait_for(lambda: "replaces" in relay.log, 5), relay.output
    assert wait_for(lambda: "waits: another session has the sound" in relay.log, 5), relay.log
    assert relay.log.count("replaces") == 1
    new.close()
    # The displaced session was waiting: it has the sound again without a restart.
    assert wait_for(lambda: old.connected, 3), old.status
    assert relay.log.count("replaces") == 1


def call_times(player: RelayPlayer) -> list[float]:
    audio = clip(1.0)
    calls: list[Callable[[], object]] = [
        lambda: player.load(audio),
        player.play,
        lambda: player.seek(0.5),
        lambda: player.set_speed(1.25),
        player.toggle,
        player.toggle,
        lambda: player.position,
    ]
    times = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def test_player_never_blocks_on_a_dead_or_silent_relay(
    players: Callable[..., RelayPlayer],
) -> None:
    # A port that accepts the TCP connection but never says HELLO: the worst case for a caller.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        for port in (free_port(), int(silent.getsockname()[1])):
            player = players(port)
            times = call_times(player)
            # Nothing waits on the network (that would be seconds: connect and HELLO time
            # out at 3 s); the bound leaves room for a busy CI machine's scheduler.
            assert statistics.median(times) < 0.001, times
            assert max(times) < 0.05, times
            assert player.playing
            before = player.position
            time.sleep(0.2)
            assert player.position > before
            assert not player.connected


def test_audio_is_only_held_in_memory(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    """The relay opens no files beyond its code and the ALSA config: no audio spill to disk."""
    sink = make_alsa_file_sink()
    relay = relays(sink, audio="none")
    player = players(relay.port)
    audio = clip(1.0)
    player.load(audio)
    player.play()
    assert wait_for(lambda: player.last_started is not None, 10)
    assert relay.proc is not None
    fd_dir = f"/proc/{relay.proc.pid}/fd"
    import os

    targets = [os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)]
    files = [t for t in targets if t.startswith("/") and not t.startswith(("/dev/", "/proc/"))]
    assert files == [], files
    assert np.frombuffer(sink.read(), dtype=np.int16).size == 0  # --audio none plays nothing


def test_long_clips_open_the_laptop_device_once_each_with_no_repeated_prefix(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    """The TUI's clip change (load the next clip, play at once) after the previous one ran out.

    The link used to PLAY the finished clip again when the next one was preloaded (before the
    player's own stop reached it): the laptop's device opened twice, 6–50 ms apart, the first
    stream the old clip from 0 (a race: the test after this one forces it). In append mode
    ALSA's file plugin writes every stream it opens to a file of its own (capture.raw,
    capture.raw.0001, …): one file per device open."""
    sink = make_alsa_file_sink(append=True)
    relay = relays(sink, audio="simpleaudio")
    player = players(relay.port)
    first = clip(3.2)
    audios = [
        first,
        replace(first, samples=np.ascontiguousarray(-first.samples)),
        replace(first, samples=np.ascontiguousarray(first.samples[::-1])),
        replace(first, samples=np.ascontiguousarray(-first.samples[::-1])),
    ]
    for audio in audios:
        player.load(audio)
        player.play()
        assert wait_for(lambda: player.last_started is not None, 10), player.status
        assert wait_for(lambda: not player.playing, audio.duration_s + 5)
        time.sleep(0.3)  # the laptop plays out its last frames
    settled_capture(sink)
    opened = sorted(sink.capture.parent.glob(sink.capture.name + "*"))
    assert [f.name for f in opened] == ["capture.raw"] + [f"capture.raw.000{n}" for n in (1, 2, 3)]
    for path, audio in zip(opened, audios, strict=True):
        assert path.read_bytes() == audio.samples.tobytes(), path.name


def test_preloading_the_next_clip_never_plays_the_previous_one_again() -> None:
    """The same race, forced: the next clip's preload reaches the link before the player's stop
    (the device thread's) does. In process, counting what the relay's player is asked to play."""
    from annotator.audio.null_player import NullPlayer
    from annotator.relay.link import Preload
    from annotator.relay.server import RelayServer

    class CountingPlayer(NullPlayer):
        plays = 0

        def play(self) -> None:
            CountingPlayer.plays += 1
            super().play()

    server = RelayServer(CountingPlayer(), SECRET, port=0)
    server.bind()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    player = RelayPlayer(f"127.0.0.1:{server.port}", SECRET)
    try:
        old = clip(0.3)
        player.load(old)
        player.play()
        assert wait_for(lambda: player.last_started is not None, 5), player.status
        assert wait_for(lambda: not player.playing, 3)
        assert CountingPlayer.plays == 1
        new = clip(0.5)
        player._link.preload(Preload(player._load_id + 1, new.samples, 16000, 1))
        time.sleep(0.3)
        assert CountingPlayer.plays == 1
    finally:
        player.close()
        server.shutdown()
