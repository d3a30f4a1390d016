"""Pairing, framing, rate limiting and range bookkeeping, in process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from annotator.audio.null_player import NullPlayer
from annotator.relay import protocol as p
from annotator.relay.ranges import Ranges
from annotator.relay.server import AttemptLimiter, NotLoopbackError, RelayServer, loopback_address


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
    proof = p.client_proof(key, a, b)
    assert p.proofs_match(proof, p.client_proof(key, a, b))
    assert not p.proofs_match(proof, p.client_proof(key, b, a))
    assert not p.proofs_match(proof, p.relay_proof(key, a, b))
    assert not p.proofs_match(proof, p.client_proof(p.secret_key("abd"), a, b))


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
    relay = RelayServer(NullPlayer(), "right", port=0, limiter=AttemptLimiter(limit=3))
    relay.bind()
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    yield relay
    relay.shutdown()


def attempt(port: int, secret: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        kind, payload = p.recv_frame(sock)
        if kind != p.Msg.HELLO:
            return kind, payload
        _magic, relay_nonce = p.unpack(p.HELLO, payload)
        nonce = p.new_nonce()
        proof = p.client_proof(p.secret_key(secret), relay_nonce, nonce)
        p.send_frame(sock, p.Msg.AUTH, p.AUTH.pack(nonce, proof))
        return p.recv_frame(sock)


def test_pairing_attempts_are_rate_limited(server: RelayServer) -> None:
    kind, payload = attempt(server.port, "right")
    assert kind == p.Msg.WELCOME
    for _ in range(3):
        kind, payload = attempt(server.port, "wrong")
        assert (kind, payload[0]) == (p.Msg.REFUSED, p.Refusal.BAD_SECRET)
    # Even the right secret waits out the window: guessing cannot go faster than 3 a minute.
    kind, payload = attempt(server.port, "right")
    assert (kind, payload[0]) == (p.Msg.REFUSED, p.Refusal.RATE_LIMITED)


def test_oversized_frames_are_rejected() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"\xff\xff\xff\xff\x0b")
        with pytest.raises(p.ProtocolViolation):
            p.recv_frame(b)


def test_playhead_follows_the_relay_when_the_laptop_lags() -> None:
    """Position reports pull the playhead back to what the laptop plays (e.g. late PCM)."""
    import time

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
