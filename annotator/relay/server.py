"""The laptop side: accept the tunnelled connection, check the pairing, play what arrives.

One annotator at a time: a new connection that proves the secret replaces the current one (the
old one gets BYE and is closed). Refusing instead would lock the annotator out after a tunnel
drop until the dead connection timed out; only a paired client can take over, so a stranger
cannot kick anyone off. The displaced session pairs again in STANDBY mode, which the relay
refuses (BUSY) while another session has the sound, so it takes the sound back by itself once
that one leaves, without a tug of war.

`annotator doctor` pairs in PROBE mode: its own session with its own playback, which waits until
the annotator's session is silent before it takes the device, and gives the device up the
moment that session plays again. A probe never replaces the annotator's session.

Threads: one accepts; each connection gets a reader (handshake, then messages) and, once paired,
a reporter that sends the device's start stamps and the playhead back.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import logging
import os
import socket
import threading
import time

from annotator.audio.player import Player
from annotator.relay import protocol as p
from annotator.relay.playback import RelayPlayback

log = logging.getLogger("annotator.relay")

# The whole handshake (HELLO sent to AUTH read), however slowly its bytes trickle in.
HANDSHAKE_DEADLINE_S = 2.0
# A wrong proof costs its own connection this long before the refusal; nobody else waits.
FAILED_PAIRING_DELAY_S = 1.0
# Without PINGs (every second from a live client) for this long the client is gone.
IDLE_TIMEOUT_S = 15.0
POSITION_EVERY_S = 0.25
# A probe waiting for the annotator's sound to finish checks this often.
PROBE_POLL_S = 0.05
# Connections still pairing; one more pushes out the oldest, so slow ones cannot block pairing.
MAX_PAIRING = 16
STAMP_POLL_S = 0.001
BUSY_LOG_EVERY_S = 60.0


class NotLoopbackError(ValueError):
    """The relay was asked to listen where other machines could reach it."""


def loopback_address(host: str) -> str:
    """`host` as a loopback IP literal, or NotLoopbackError saying why not."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise NotLoopbackError(
            f"--host {host!r} is not an IP address; the relay listens on loopback only "
            "(127.0.0.1 or ::1): the SSH tunnel reaches it there"
        ) from None
    if not ip.is_loopback:
        raise NotLoopbackError(
            f"refusing --host {host}: the relay listens on loopback only (127.0.0.1 or ::1), so "
            "nobody on your network can send sound to, or pair with, your laptop; "
            "`ssh -R` reaches it on loopback"
        )
    return str(ip)


class RelayServer:
    def __init__(
        self,
        player: Player,
        secret: str,
        host: str = "127.0.0.1",
        port: int = p.DEFAULT_PORT,
    ) -> None:
        self._host = loopback_address(host)
        self._port = port
        # Only the derived key is kept; the secret itself is the caller's to print once.
        self._key = p.secret_key(secret)
        self._player = player
        self._playback = RelayPlayback(player)
        self._probe_playback = RelayPlayback(player, yields_to=self._playback)
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._probe: _Session | None = None
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._pairing: collections.OrderedDict[socket.socket, str] = collections.OrderedDict()
        self._busy_logged_at = -BUSY_LOG_EVERY_S

    def bind(self) -> int:
        """Listen; returns the port (useful with port 0). Raises OSError when taken."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
            sock.listen(MAX_PAIRING)
        except OSError:
            sock.close()
            raise
        self._listener = sock
        self._port = int(sock.getsockname()[1])
        return self._port

    @property
    def port(self) -> int:
        return self._port

    def serve_forever(self) -> None:
        listener = self._listener
        if listener is None:
            raise RuntimeError("bind() first")
        while not self._stopped.is_set():
            try:
                conn, peer = listener.accept()
            except OSError:
                if self._stopped.is_set():
                    return
                raise
            where = f"{peer[0]}:{peer[1]}"
            threading.Thread(
                target=self._handle, args=(conn, where), name=f"relay-conn-{where}", daemon=True
            ).start()

    def shutdown(self) -> None:
        self._stopped.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sessions = [self._session, self._probe]
            self._session = self._probe = None
        for session in sessions:
            if session is not None:
                session.close("the relay is stopping")
        self._playback.reset()
        self._probe_playback.reset()
        self._player.close()

    # ----- one connection ---------------------------------------------------------------------

    def _handle(self, conn: socket.socket, where: str) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._admit(conn, where)
        try:
            paired = self._pair(conn, where)
        except (OSError, p.ConnectionClosed, p.ProtocolViolation) as exc:
            log.warning("connection from %s dropped during pairing: %s", where, _why(exc))
            paired = None
        finally:
            with self._lock:
                self._pairing.pop(conn, None)
        if paired is None:
            conn.close()
            return
        mode, welcome = paired
        if mode is p.Mode.PROBE:
            if _welcomed(conn, welcome):
                self._run_probe(conn, where)
            return
        session = _Session(conn, where, self._playback)
        with self._lock:
            old = self._session
            busy = mode is p.Mode.STANDBY and old is not None
            if not busy:
                self._session = session
        if busy:
            # Decided before WELCOME, after the proof: only a paired client learns that someone
            # has the sound, and a waiting client is never told it is paired.
            now = time.monotonic()
            if now - self._busy_logged_at > BUSY_LOG_EVERY_S:  # it asks every second
                self._busy_logged_at = now
                log.info("annotator at %s waits: another session has the sound", where)
            _refuse(conn, p.Refusal.BUSY, "another annotator session has the sound")
            conn.close()
            return
        if old is not None:
            log.info("annotator at %s replaces the one at %s", where, old.where)
            old.close(f"{p.BYE_REPLACED} by a newer connection from {where}")
            # The new client numbers its renders afresh.
            self._playback.reset()
        if not _welcomed(conn, welcome):
            with self._lock:
                if self._session is session:
                    self._session = None
            return
        log.info("annotator connected from %s", where)
        session.run()
        with self._lock:
            if self._session is session:
                self._session = None
                # Only the current client's departure silences the device.
                self._playback.reset()
        log.info("annotator at %s disconnected (%s)", where, session.end_reason)

    def _admit(self, conn: socket.socket, where: str) -> None:
        """Count `conn` as pairing; past MAX_PAIRING the oldest pairing connection is cut."""
        with self._lock:
            self._pairing[conn] = where
            oldest = None
            if len(self._pairing) > MAX_PAIRING:
                oldest, oldest_where = self._pairing.popitem(last=False)
        if oldest is not None:
            log.warning(
                "cut the pairing connection from %s: %d connections were pairing at once",
                oldest_where,
                MAX_PAIRING + 1,
            )
            # Wakes its thread out of recv(); the thread closes it.
            with contextlib.suppress(OSError):
                oldest.shutdown(socket.SHUT_RDWR)

    def _run_probe(self, conn: socket.socket, where: str) -> None:
        probe = _Session(conn, where, self._probe_playback)
        with self._lock:
            old, self._probe = self._probe, probe
        if old is not None:
            old.close("another probe started")
        self._probe_playback.reset()
        log.info("doctor's probe connected from %s (it plays when the device is free)", where)
        probe.run()
        with self._lock:
            if self._probe is probe:
                self._probe = None
                self._probe_playback.reset()
        log.info("doctor's probe at %s disconnected (%s)", where, probe.end_reason)

    def _pair(self, conn: socket.socket, where: str) -> tuple[p.Mode, bytes] | None:
        """The proven mode and the WELCOME to send once the caller accepts it (None: refused)."""
        deadline = time.monotonic() + HANDSHAKE_DEADLINE_S
        conn.settimeout(HANDSHAKE_DEADLINE_S)
        nonce = p.new_nonce()
        p.send_frame(conn, p.Msg.HELLO, p.HELLO.pack(p.MAGIC, nonce))
        kind, payload = p.recv_frame(conn, limit=p.MAX_PREAUTH_PAYLOAD, deadline=deadline)
        if kind != p.Msg.AUTH or len(payload) != p.AUTH.size:
            log.warning("refused connection from %s: it does not speak this relay protocol", where)
            _refuse(conn, p.Refusal.PROTOCOL, "expected AUTH (is annotator the same version?)")
            return None
        client_nonce, mac, mode_byte = p.unpack(p.AUTH, payload)
        try:
            mode = p.Mode(mode_byte)
        except ValueError:
            _refuse(conn, p.Refusal.PROTOCOL, f"unknown pairing mode {mode_byte}")
            return None
        if not p.proofs_match(p.client_proof(self._key, nonce, client_nonce, mode), mac):
            log.warning("refused connection from %s: wrong pairing secret", where)
            # This connection alone waits (no global lockout a stranger could trigger); it
            # also keeps a client that retries on its own from spinning.
            self._stopped.wait(FAILED_PAIRING_DELAY_S)
            _refuse(conn, p.Refusal.BAD_SECRET, "wrong pairing secret")
            return None
        info = f"{self._player.name} on {os.uname().nodename}".encode()
        conn.settimeout(IDLE_TIMEOUT_S)
        return mode, p.relay_proof(self._key, nonce, client_nonce) + info


def _welcomed(conn: socket.socket, welcome: bytes) -> bool:
    try:
        p.send_frame(conn, p.Msg.WELCOME, welcome)
    except OSError:
        conn.close()
        return False
    return True


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no complete pairing within {HANDSHAKE_DEADLINE_S:.0f} s"
    return str(exc) or type(exc).__name__


def _refuse(conn: socket.socket, code: p.Refusal, reason: str) -> None:
    with contextlib.suppress(OSError):
        p.send_frame(conn, p.Msg.REFUSED, p.REFUSED.pack(code) + reason.encode())


class _Session:
    """A paired client: its messages drive the playback; reports flow back to it."""

    def __init__(self, conn: socket.socket, where: str, playback: RelayPlayback) -> None:
        self.conn = conn
        self.where = where
        self.end_reason = "closed"
        self._playback = playback
        self._send_lock = threading.Lock()
        self._wake = threading.Condition()
        self._closed = False
        self._kicked = False

    def run(self) -> None:
        self._playback.on_change = self._poke
        reporter = threading.Thread(target=self._report, name="relay-report", daemon=True)
        reporter.start()
        try:
            while not self._closed:
                kind, payload = p.recv_frame(self.conn)
                self._dispatch(kind, payload)
        except p.ConnectionClosed:
            self.end_reason = "the annotator closed the connection"
        except TimeoutError:
            self.end_reason = f"nothing heard for {IDLE_TIMEOUT_S:.0f} s"
        except p.ProtocolViolation as exc:
            self.end_reason = f"protocol error: {exc}"
        except OSError as exc:
            self.end_reason = "closed" if self._closed else f"connection lost: {exc}"
        finally:
            self.close(None)
            reporter.join(1.0)

    def close(self, reason: str | None) -> None:
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        if reason is not None:
            self.end_reason = reason
            with contextlib.suppress(OSError):
                self._send(p.Msg.BYE, reason.encode())
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()

    def _send(self, kind: p.Msg, payload: bytes) -> None:
        with self._send_lock:
            p.send_frame(self.conn, kind, payload)

    def _poke(self) -> None:
        with self._wake:
            self._kicked = True
            self._wake.notify_all()

    def _dispatch(self, kind: int, payload: bytes) -> None:
        pb = self._playback
        if kind == p.Msg.PCM:
            render_id, first = p.unpack(p.PCM, payload)
            pb.pcm(int(render_id), int(first), payload[p.PCM.size :])
        elif kind == p.Msg.PLAY:
            gen, render_id, start = (int(v) for v in p.unpack(p.PLAY, payload))
            pb.play(gen, render_id, start)
        elif kind == p.Msg.STOP:
            (gen,) = p.unpack(p.STOP, payload)
            pb.stop(int(gen))
        elif kind == p.Msg.LOAD:
            render_id, rate, channels, frames = (int(v) for v in p.unpack(p.LOAD, payload))
            pb.load(render_id, rate, channels, frames)
        elif kind == p.Msg.DROP:
            (render_id,) = p.unpack(p.DROP, payload)
            pb.drop(int(render_id))
        elif kind == p.Msg.PING:
            self._send(p.Msg.PONG, payload[: p.PING.size])
        else:
            raise p.ProtocolViolation(f"unexpected message type {kind}")

    def _report(self) -> None:
        """Device start stamps as soon as they exist; the playhead a few times a second."""
        last_position = 0.0
        last_error = self._playback.device_error()
        while True:
            with self._wake:
                wait = POSITION_EVERY_S
                if self._playback.awaiting_stamp:
                    wait = STAMP_POLL_S
                elif self._playback.waiting_for_device:
                    wait = PROBE_POLL_S
                self._wake.wait_for(lambda: self._closed or self._kicked, wait)
                self._kicked = False
                if self._closed:
                    return
            self._playback.retry()
            error = self._playback.device_error()
            if error != last_error:
                last_error = error
                log.warning("the sound device failed: %s (playing muted)", error)
            try:
                report = self._playback.take_start_report()
                if report is not None:
                    self._send(
                        p.Msg.STARTED,
                        p.STARTED.pack(report.generation, report.first_frame_at, report.delay),
                    )
                now = time.monotonic()
                if now - last_position >= POSITION_EVERY_S:
                    last_position = now
                    pos = self._playback.position()
                    if pos is not None:
                        gen, frame, playing = pos
                        self._send(p.Msg.POSITION, p.POSITION.pack(gen, frame, int(playing)))
            except OSError:
                return
