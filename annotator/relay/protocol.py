"""The relay's wire format and pairing handshake.

Frames: a 4-byte big-endian payload length, a 1-byte message type, the payload. Everything else
is fixed-layout `struct` fields; PCM is raw interleaved int16 little-endian (what every device
here takes, and what the clip decoder produces), so neither side converts anything.

Pairing is a mutual challenge-response over HMAC-SHA256; the secret never crosses the wire:

    relay  -> HELLO   magic, relay nonce
    client -> AUTH    client nonce, HMAC(k, "client" | relay nonce | client nonce | mode), mode
    relay  -> WELCOME HMAC(k, "relay" | relay nonce | client nonce), what the relay plays on
           or REFUSED code, reason (and closes)

The client checks the relay's proof before sending any audio: on a shared host another user
could listen on the forwarded port first, and must not receive the recordings.

`mode` says what the pairing is for: the annotator's session taking the sound (a newer one
replaces an older one), the same but only if nobody has it (a displaced session waiting to take
it back), or `annotator doctor`'s probe, which never displaces anyone. The proof covers it, so a
man in the middle cannot turn a probe into a takeover.

Anyone on a shared host can connect to the forwarded port, so nothing before the proof may cost
the relay much: the handshake has one deadline in total (not per read), frames before it are a
few dozen bytes at most, and a wrong proof costs that one connection a delay, never anyone else.

The link itself is plain TCP: it only ever runs over loopback and the SSH tunnel, which encrypts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import socket
import struct
import time
from enum import IntEnum
from typing import Any

from annotator.relay import ADDRESS_ENV as ADDRESS_ENV  # defined with `relay_configured`

MAGIC = b"ANRELAY2"
MAGIC_FAMILY = b"ANRELAY"  # any version: a relay, just not this one
NONCE_BYTES = 32
MAC_BYTES = 32
# A PCM chunk is ~100 ms (19 kB at 48 kHz stereo); anything much larger is not ours.
MAX_PAYLOAD = 1 << 20
# Before the pairing is proven only HELLO/AUTH/REFUSED travel; AUTH is 65 bytes.
MAX_PREAUTH_PAYLOAD = 96
# 26 base32 characters: what `new_secret` makes, and the least the relay accepts.
MIN_SECRET_CHARS = 26
DEFAULT_PORT = 47001
SECRET_ENV = "ANNOTATOR_RELAY_SECRET"  # noqa: S105 - a variable name
BYE_REPLACED = "replaced"

_HEADER = struct.Struct("!IB")
HELLO = struct.Struct(f"!{len(MAGIC)}s{NONCE_BYTES}s")
AUTH = struct.Struct(f"!{NONCE_BYTES}s{MAC_BYTES}sB")  # client nonce, proof, mode
LOAD = struct.Struct("!IIBI")  # render id, sample rate, channels, frames
PCM = struct.Struct("!II")  # render id, first frame; int16 frames follow
PLAY = struct.Struct("!III")  # generation, render id, start frame
STOP = struct.Struct("!I")  # generation
DROP = struct.Struct("!I")  # render id
PING = struct.Struct("!d")  # sender's clock, echoed back in PONG
STARTED = struct.Struct("!Idd")  # generation, relay first_frame_at, relay delay (s)
POSITION = struct.Struct("!IIB")  # generation, render frame, playing
REFUSED = struct.Struct("!B")  # code; a UTF-8 reason follows


class Msg(IntEnum):
    HELLO = 1
    AUTH = 2
    WELCOME = 3
    REFUSED = 4
    BYE = 5
    LOAD = 10
    PCM = 11
    PLAY = 12
    STOP = 13
    DROP = 14
    PING = 15
    PONG = 16
    STARTED = 20
    POSITION = 21


class Mode(IntEnum):
    TAKE_OVER = 0  # the annotator's session: replaces whichever session has the sound
    STANDBY = 1  # the same, but only if no session has it (refused BUSY otherwise)
    PROBE = 2  # `annotator doctor`: plays when the device is free, displaces nobody


class Refusal(IntEnum):
    BAD_SECRET = 1
    PROTOCOL = 3
    BUSY = 4  # STANDBY while another session has the sound


class ProtocolViolation(Exception):
    """The peer sent something that is not this protocol; the connection is dropped."""


class ConnectionClosed(Exception):
    """The peer closed the connection (or the tunnel went away)."""


def send_frame(sock: socket.socket, kind: Msg, payload: bytes = b"") -> None:
    sock.sendall(_HEADER.pack(len(payload), kind) + payload)


def send_pcm(sock: socket.socket, render_id: int, first_frame: int, data: memoryview) -> None:
    # Header and payload in one sendmsg: no copy of the PCM, one segment on the wire.
    head = _HEADER.pack(PCM.size + len(data), Msg.PCM) + PCM.pack(render_id, first_frame)
    total = len(head) + len(data)
    sent = sock.sendmsg([head, data])
    if sent < total:
        rest = (head + bytes(data))[sent:]
        sock.sendall(rest)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the handshake took too long")
            sock.settimeout(left)
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise ConnectionClosed("the other side closed the connection")
        got += n
    return bytes(buf)


def recv_frame(
    sock: socket.socket, *, limit: int = MAX_PAYLOAD, deadline: float | None = None
) -> tuple[int, bytes]:
    """The next (type, payload). Unknown types are returned as is: the caller decides.

    `deadline` (time.monotonic()) bounds the whole frame, however slowly its bytes trickle in:
    TimeoutError once it passes. Without it the socket's own timeout applies per read.
    """
    length, kind = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline))
    if length > limit:
        raise ProtocolViolation(f"frame of {length} bytes is larger than any relay message here")
    return kind, _recv_exact(sock, length, deadline) if length else b""


def unpack(layout: struct.Struct, payload: bytes) -> tuple[Any, ...]:
    if len(payload) < layout.size:
        raise ProtocolViolation(f"message too short ({len(payload)} < {layout.size} bytes)")
    return layout.unpack_from(payload)


# ----- pairing ----------------------------------------------------------------------------------


def new_secret() -> str:
    """128 random bits as 26 base32 characters in dash-separated groups, easy to read aloud."""
    text = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _normalised(secret: str) -> str:
    return re.sub(r"[\s-]+", "", secret).lower()


def secret_key(secret: str) -> bytes:
    """The HMAC key for a pairing secret; dashes, spaces and case do not matter."""
    normalised = _normalised(secret)
    if not normalised:
        raise ValueError("the relay pairing secret is empty")
    return hashlib.sha256(b"annotator-relay-v1\0" + normalised.encode()).digest()


def weak_secret(secret: str) -> str | None:
    """Why `secret` is too weak for the relay to pair with (None when it is not)."""
    size = len(_normalised(secret))
    if size < MIN_SECRET_CHARS:
        return (
            f"the pairing secret has {size} characters; at least {MIN_SECRET_CHARS} are needed "
            "(128 bits, what `annotator relay` generates)"
        )
    return None


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def client_proof(key: bytes, relay_nonce: bytes, client_nonce: bytes, mode: Mode) -> bytes:
    message = b"client" + relay_nonce + client_nonce + bytes([mode])
    return hmac.new(key, message, hashlib.sha256).digest()


def relay_proof(key: bytes, relay_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(key, b"relay" + relay_nonce + client_nonce, hashlib.sha256).digest()


def proofs_match(expected: bytes, got: bytes) -> bool:
    return hmac.compare_digest(expected, got)
