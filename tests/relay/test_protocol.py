"""Pairing (modes, proofs, what a stranger can and cannot block), framing, ranges, in process."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from annotator.audio.null_player import NullPlayer
from annotator.relay import protocol as p
from annotator.relay import server as relay_server
from annotator.relay.ranges import Ranges
from annotator.relay.server import NotLoopbackError, RelayServer, loopback_address


def test_secret_is_128_bits_and_forgiving_to_type() -> None:
    secret = p.new_secret()
    assert len(secret.replace("-", "")) == 26
    assert p.new_secret() != secret
    assert p.secret_key(secret) == p.secret_key(secret.upper().replace("-", " "))
    assert p.secret_key(secret) != p.secret_key(p.new_secret())
    with pytest.raises(ValueError):
        p.secret_key(" - ")


def test_proofs_are_bound_to_both_nonces_and_direction() -> None:
    key = p.secret_key("abc")
    a, b = p.new_nonce(), p.new_nonce()
    proof = p.client_proof(key, a, b, p.Mode.TAKE_OVER)
    assert p.proofs_match(proof, p.client_proof(key, a, b, p.Mode.TAKE_OVER))
    assert not p.proofs_match(proof, p.client_proof(key, b, a, p.Mode.TAKE_OVER))
    # The mode is proven too: a probe's proof cannot be replayed as a takeover.
    assert not p.proofs_match(proof, p.client_proof(key, a, b, p.Mode.PROBE))
    assert not p.proofs_match(proof, p.relay_proof(key, a, b))
    assert not p.proofs_match(proof, p.client_proof(p.secret_key("abd"), a, b, p.Mode.TAKE_OVER))


def test_loopback_only() -> None:
    assert loopback_address("127.0.0.1") == "127.0.0.1"
    assert loopback_address("::1") == "::1"
    assert loopback_address("localhost") == "127.0.0.1"
    for host in ("0.0.0.0", "10.0.0.2", "::", "laptop.local"):
        with pytest.raises(NotLoopbackError, match="loopback only"):
            loopback_address(host)


def test_ranges() -> None:
    r = Ranges()
    r.add(10, 20)
    r.add(30, 40)
    assert r.first_gap(0, 50) == (0, 10)
    assert r.first_gap(10, 50) == (20, 30)
    r.add(20, 30)
    assert r.covers(10, 40) and not r.covers(5, 15)
    assert r.first_gap(10, 40) is None
    assert r.first_gap(15, 50) == (40, 50)
    assert r.total == 30


@pytest.fixture
def server() -> Iterator[RelayServer]:
    relay = RelayServer(NullPlayer(), "right", port=0)
    relay.bind()
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    yield relay
    relay.shutdown()


def attempt(port: int, secret: str, mode: p.Mode = p.Mode.PROBE) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        kind, payload = p.recv_frame(sock)
        if kind != p.Msg.HELLO:
            return kind, payload
        _magic, relay_nonce = p.unpack(p.HELLO, payload)
        nonce = p.new_nonce()
        proof = p.client_proof(p.secret_key(secret), relay_nonce, nonce, mode)
        p.send_frame(sock, p.Msg.AUTH, p.AUTH.pack(nonce, proof, mode))
        return p.recv_frame(sock)


def timed_attempt(port: int, secret: str) -> tuple[int, float]:
    started = time.monotonic()
    kind, _payload = attempt(port, secret)
    return kind, time.monotonic() - started


def test_wrong_secrets_slow_their_own_connection_and_never_lock_out_the_right_one(
    server: RelayServer,
) -> None:
    with ThreadPoolExecutor(12) as pool:
        wrong = [pool.submit(timed_attempt, server.port, "wrong") for _ in range(10)]
        time.sleep(0.2)  # all ten are waiting out their delay now
        kind, took = timed_attempt(server.port, "right")
        assert kind == p.Msg.WELCOME
        assert took < 0.5, took
        for future in wrong:
            kind, took = future.result()
            assert kind == p.Msg.REFUSED
            assert took >= relay_server.FAILED_PAIRING_DELAY_S * 0.9, took
    # And after them the right secret still pairs at once: there is no lockout to wait out.
    kind, took = timed_attempt(server.port, "right")
    assert kind == p.Msg.WELCOME and took < 0.5


def trickle(port: int, stop: threading.Event) -> float:
    """A connection that sends its AUTH header one byte every 0.3 s; how long the relay kept it."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        p.recv_frame(sock)  # HELLO
        try:
            for byte in b"\x00\x00\x00\x41\x02" + bytes(65):
                if stop.is_set():
                    break
                sock.sendall(bytes([byte]))
                time.sleep(0.3)
                sock.settimeout(0.01)
                with contextlib.suppress(TimeoutError):
                    if sock.recv(64) == b"":
                        break  # closed by the relay
        except OSError:
            pass
    return time.monotonic() - started


def test_slow_connections_cannot_hold_the_pairing_slots(server: RelayServer) -> None:
    """More trickling connections than there are slots: each is cut at the handshake deadline
    (not after a timeout per read), and the right secret pairs in the meantime."""
    stop = threading.Event()
    slow = relay_server.MAX_PAIRING + 4
    with ThreadPoolExecutor(slow) as pool:
        held = [pool.submit(trickle, server.port, stop) for _ in range(slow)]
        time.sleep(0.5)
        kind, took = timed_attempt(server.port, "right")
        assert kind == p.Msg.WELCOME, kind
        assert took < 0.5, took
        times = [future.result() for future in held]
    stop.set()
    assert max(times) < relay_server.HANDSHAKE_DEADLINE_S + 0.6, times


def test_pre_auth_frames_are_a_few_dozen_bytes(server: RelayServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        p.recv_frame(sock)  # HELLO
        sock.sendall((4096).to_bytes(4, "big") + bytes([p.Msg.AUTH]))  # and nothing after
        started = time.monotonic()
        assert sock.recv(64) == b""  # closed at once, without waiting for the 4 kB
        assert time.monotonic() - started < 0.5


def test_oversized_frames_are_rejected() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"\xff\xff\xff\xff\x0b")
        with pytest.raises(p.ProtocolViolation):
            p.recv_frame(b)


def test_playhead_follows_the_relay_when_the_laptop_lags() -> None:
    """Position reports pull the playhead back to what the laptop plays (e.g. late PCM)."""
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip, free_port

    player = RelayPlayer(f"127.0.0.1:{free_port()}", "secret")
    try:
        player.load(clip(5.0))
        player.seek(2.0)
        player.play()
        load_id = player._load_id
        player._follow_relay(load_id, 1.0, 1.5, True)  # the laptop is 0.5 s behind
        assert abs(player.position - 1.5) < 0.05
        player._follow_relay(load_id, 1.0, player.position + 0.02, True)  # jitter: ignored
        assert abs(player.position - 1.5) < 0.05
        player._follow_relay(load_id + 1, 1.0, 4.0, True)  # a report about another clip
        assert player.position < 2.0
        time.sleep(0.05)
        assert player.playing
    finally:
        player.close()


def test_a_probe_waits_for_the_annotators_sound_and_gives_the_device_back_at_once(
    server: RelayServer,
) -> None:
    """doctor's probe against a paired annotator, in process: the probe is held back while the
    annotator plays, plays when the device is free, and the annotator's next PLAY takes the device
    from it immediately; the annotator's session is never replaced."""
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip, wait_for

    address = f"127.0.0.1:{server.port}"
    annotator = RelayPlayer(address, "right")
    probe = RelayPlayer(address, "right", probe=True)
    try:
        annotator.load(clip(1.0))
        annotator.play()
        assert wait_for(lambda: annotator.last_started is not None, 5), annotator.status
        probe.load(clip(3.0))
        probe.play()
        assert wait_for(lambda: probe.connected, 5), probe.status
        time.sleep(0.3)
        assert probe.last_started is None  # held back: the annotator is playing
        assert wait_for(lambda: probe.last_started is not None, 3), probe.status
        started = probe.last_started
        assert started is not None
        first = annotator.last_started
        assert first is not None and started.relay_at >= first.relay_at + 0.95

        annotator.load(clip(0.5))
        pressed = time.monotonic()
        annotator.play()
        assert wait_for(lambda: annotator.last_started is not None, 2), annotator.status
        again = annotator.last_started
        assert again is not None and again.relay_at - pressed < 0.1  # no waiting for the probe
        assert annotator.connected and probe.connected
    finally:
        probe.close()
        annotator.close()


def test_doctor_says_the_path_works_when_the_annotator_keeps_the_device_busy(
    server: RelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotator import doctor
    from annotator.relay.player import RelayPlayer
    from tests.relay.support import clip, wait_for

    address = f"127.0.0.1:{server.port}"
    annotator = RelayPlayer(address, "right")
    monkeypatch.setenv(p.SECRET_ENV, "right")
    monkeypatch.setattr(doctor, "RELAY_PROBE_TIMEOUT_S", 0.5)
    try:
        annotator.load(clip(3.0))
        annotator.play()
        assert wait_for(lambda: annotator.last_started is not None, 5), annotator.status
        check = doctor.check_relay(None, address)
        assert check.status is doctor.Status.WARN, check
        assert "paired" in check.detail and "busy with your running annotator" in check.detail
        assert annotator.connected and annotator.playing  # untouched
    finally:
        annotator.close()
