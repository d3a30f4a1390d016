"""The TUI side of the relay connection: connect, pair, stream, reconnect — all off the caller.

One daemon thread owns the connection and does all writing; a second reads while a connection
is up. The player only ever calls `want`, `preload` and `close`, which set state under a
condition and return at once, so a slow or dead tunnel can never stall the Textual event loop.

Write order for a play: LOAD (new render), its first ~100 ms from the start frame, PLAY, then the
rest of the render in ~100 ms chunks. Between chunks the newest control state goes first, so a
seek or pause never waits behind a clip's worth of PCM. The clip is pushed as soon as it is
loaded, before play is pressed, so on a live link the audio is already on the laptop.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from annotator.audio.decode import Int16Frames
from annotator.relay import protocol as p
from annotator.relay.ranges import Ranges

log = logging.getLogger("annotator.relay")

CHUNK_S = 0.1
PING_EVERY_S = 1.0
# No frame from the relay for this long (PONGs come every second) means the tunnel is dead.
DEAD_AFTER_S = 4.0
CONNECT_TIMEOUT_S = 3.0
# Capped at 1 s: a restarted relay (or tunnel) is heard again within about a second.
BACKOFF_S = (0.1, 0.25, 0.5, 1.0)
# A displaced session asks this often whether the sound is free again.
STANDBY_RETRY_S = 1.0


@dataclass(frozen=True, eq=False)
class Wanted:
    """What the relay should be playing: `samples[start:]` of the render for `speed`."""

    generation: int
    load_id: int
    speed: float
    samples: Int16Frames
    rate: int
    channels: int
    start: int


@dataclass(frozen=True, eq=False)
class Preload:
    load_id: int
    samples: Int16Frames
    rate: int
    channels: int


@dataclass(eq=False)
class _Sent:
    render_id: int
    load_id: int
    samples: Int16Frames
    rate: int
    channels: int
    ranges: Ranges = field(default_factory=Ranges)

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])


@dataclass(frozen=True)
class Started:
    """The relay's device took the first frame of PLAY `generation`."""

    generation: int
    load_id: int
    estimated_at: float  # our monotonic clock
    relay_at: float  # the relay's monotonic clock (comparable on one machine only)
    sent_at: float  # when we sent PLAY


class _Dead(Exception):
    """The current connection is unusable; reconnect."""


class _Busy(Exception):
    """STANDBY refused: another session has the sound."""


class _GiveUp(Exception):
    """Retrying cannot help (wrong secret) until `repair` gives a new one."""


class Link:
    def __init__(
        self,
        host: str,
        port: int,
        key: bytes,
        *,
        on_connected: Callable[[], tuple[int, Wanted | None]],
        on_started: Callable[[Started], None],
        on_position: Callable[[int, float, float, bool], None],
        mode: p.Mode = p.Mode.TAKE_OVER,
    ) -> None:
        self.host, self.port = host, port
        self._key = key
        self._mode = mode
        self._standby = False  # displaced by a newer session: pair only when the sound is free
        self._on_connected = on_connected
        self._on_started = on_started
        self._on_position = on_position
        self._cond = threading.Condition()
        self._wanted: Wanted | None = None
        self._generation = -1
        self._preload: Preload | None = None
        self._dirty = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.connected = False
        self.status = f"relay {host}:{port}: not connected yet"
        self.muted_reason = "not connected yet"  # a few words, for the status bar
        self.needs_secret = False  # the relay refused the secret: only `repair` helps
        self.relay_info = ""
        self.rtt = 0.0

    # ----- called by the player (any thread; never blocks) --------------------------------------

    def want(self, generation: int, wanted: Wanted | None) -> None:
        """Play `wanted` (None: silence). Older generations than one already seen are stale."""
        with self._cond:
            if generation < self._generation:
                return
            if generation == self._generation and (wanted is None) == (self._wanted is None):
                return
            self._generation = generation
            self._wanted, self._dirty = wanted, True
            self._cond.notify_all()
        self._ensure_started()

    def preload(self, preload: Preload) -> None:
        with self._cond:
            wanted = self._wanted
            if wanted is not None and wanted.load_id != preload.load_id:
                # A new clip silences the old one. The player's own stop reaches us a moment
                # later from its device thread; until then the old clip must not look wanted.
                self._wanted = None
            self._preload, self._dirty = preload, True
            self._cond.notify_all()
        self._ensure_started()

    def repair(self, key: bytes) -> None:
        """Pair again with a new secret's key (the relay's secret was rotated)."""
        with self._cond:
            self._key = key
            self._standby = False  # asked for by the annotator: take the sound
            self._cond.notify_all()
        self._ensure_started()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            sock = self._sock
        if sock is not None:
            _shutdown(sock)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def _ensure_started(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="relay-link", daemon=True)
            self._thread.start()

    # ----- the connection thread ----------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            key = self._key
            mode = p.Mode.STANDBY if self._standby else self._mode
            try:
                sock = self._connect(key, mode)
            except _GiveUp as exc:
                with self._cond:
                    if self._key is key:
                        self.needs_secret = True
                        self._set_status(False, str(exc), "wrong pairing secret")
                        log.warning("%s", exc)
                        self._thread = None  # `repair` starts a new one
                        return
                continue  # a new secret came while this attempt used the old one
            except _Busy:
                self._set_status(False, _BUSY_STATUS, "another session has the sound")
                self._sleep(STANDBY_RETRY_S)
                continue
            except (OSError, p.ConnectionClosed, p.ProtocolViolation, _Dead) as exc:
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)] * random.uniform(0.8, 1.2)
                failures += 1
                why, short = _why(exc), "relay unreachable"
                if isinstance(exc, p.ConnectionClosed):
                    # sshd accepts on the host's end, then finds nothing on the laptop's.
                    why, short = "the tunnel is up but no relay answers behind it", "no relay"
                self._set_status(
                    False,
                    f"relay {self.host}:{self.port} unreachable ({why}): muted, "
                    "retrying — is `annotator relay` running and the ssh -R tunnel up?",
                    short,
                )
                self._sleep(delay)
                continue
            failures = 0
            self._standby = False
            self.needs_secret = False
            session = _Session(self, sock)
            try:
                self._serve(session)
            except (OSError, p.ConnectionClosed, p.ProtocolViolation, _Dead) as exc:
                if session.replaced:
                    # Wait in STANDBY: the newest session keeps the sound while it is there,
                    # and this one takes it back by itself when that one leaves.
                    self._standby = True
                    log.info("another annotator session took the relay's sound")
                    self._set_status(False, _BUSY_STATUS, "another session has the sound")
                elif not self._closed:
                    log.info("relay connection lost: %s", _why(exc))
                    self._set_status(
                        False,
                        f"relay connection lost ({_why(exc)}): muted, reconnecting…",
                        "connection lost",
                    )
            finally:
                with self._cond:
                    self._sock = None
                _shutdown(sock)
                sock.close()
            if self._standby:
                self._sleep(STANDBY_RETRY_S)
        self._set_status(False, "relay closed", "closed")

    def _sleep(self, seconds: float) -> None:
        """Back off; a new secret (`repair`) or `close` ends the wait at once."""
        with self._cond:
            key = self._key
            self._cond.wait_for(lambda: self._closed or self._key is not key, seconds)

    def _set_status(self, connected: bool, status: str, muted_reason: str = "") -> None:
        self.connected, self.status, self.muted_reason = connected, status, muted_reason

    def _connect(self, key: bytes, mode: p.Mode) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            kind, payload = p.recv_frame(sock, limit=p.MAX_PREAUTH_PAYLOAD)
            if kind == p.Msg.REFUSED:
                raise _Dead(_refusal_text(payload))
            if kind != p.Msg.HELLO:
                raise p.ProtocolViolation("the port does not answer like `annotator relay`")
            magic, relay_nonce = p.unpack(p.HELLO, payload)
            if magic != p.MAGIC:
                if magic.startswith(p.MAGIC_FAMILY):
                    raise p.ProtocolViolation(
                        "the relay runs another version of annotator: install the same version "
                        "on the laptop and the host"
                    )
                raise p.ProtocolViolation("the port does not answer like `annotator relay`")
            nonce = p.new_nonce()
            proof = p.client_proof(key, relay_nonce, nonce, mode)
            p.send_frame(sock, p.Msg.AUTH, p.AUTH.pack(nonce, proof, mode))
            kind, payload = p.recv_frame(sock, limit=p.MAX_PREAUTH_PAYLOAD + 256)
            if kind == p.Msg.REFUSED:
                code = payload[0] if payload else 0
                if code == p.Refusal.BAD_SECRET:
                    raise _GiveUp(
                        "the relay refused the pairing secret (was it rotated with "
                        "`annotator relay --new-secret`?): muted until you enter the secret "
                        "your laptop's `annotator relay` shows"
                    )
                if code == p.Refusal.BUSY:
                    raise _Busy(_refusal_text(payload))
                raise _Dead(_refusal_text(payload))
            if kind != p.Msg.WELCOME or len(payload) < p.MAC_BYTES:
                raise p.ProtocolViolation("unexpected answer to the pairing")
            expected = p.relay_proof(key, relay_nonce, nonce)
            if not p.proofs_match(expected, payload[: p.MAC_BYTES]):
                # Someone else holds the port: never send them recordings.
                raise _Dead("the listener on the relay port does not know the secret: not sending")
            self.relay_info = payload[p.MAC_BYTES :].decode("utf-8", "replace")
            sock.settimeout(DEAD_AFTER_S + 1.0)
        except BaseException:
            sock.close()
            raise
        return sock

    def _serve(self, session: _Session) -> None:
        sock = session.sock
        # What was wanted while disconnected started from a stale position: ask the player for
        # what should be heard now (it takes the player's lock: never call it under ours).
        generation, wanted = self._on_connected()
        with self._cond:
            if self._closed:
                return
            self._sock = sock
            if generation >= self._generation:
                self._generation, self._wanted = generation, wanted
            self._dirty = True
        self._set_status(True, f"relay {self.host}:{self.port}: playing on {self.relay_info}")
        log.info("relay connected: %s", self.relay_info)
        session.run()


_BUSY_STATUS = (
    "another annotator session paired with the relay and has the sound: muted here; "
    "the sound comes back here by itself when that session ends"
)


class _Session:
    """One live connection: the writer loop (this thread) and a reader thread."""

    def __init__(self, link: Link, sock: socket.socket) -> None:
        self._link = link
        self._sock = self.sock = sock
        self._renders: dict[tuple[int, float], _Sent] = {}
        self._next_render_id = 1
        self._playing: Wanted | None = None
        self._play_sent_at = 0.0
        self._last_heard = time.monotonic()
        self._last_ping = 0.0
        self._dead: str | None = None
        self.replaced = False

    def run(self) -> None:
        reader = threading.Thread(target=self._read, name="relay-link-read", daemon=True)
        reader.start()
        try:
            self._write_loop()
        finally:
            _shutdown(self._sock)
            reader.join(1.0)

    # ----- writing ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        link = self._link
        while True:
            chunk = self._next_chunk()
            with link._cond:
                now = time.monotonic()
                ping_due = self._last_ping + PING_EVERY_S
                if chunk is None and not link._dirty:
                    link._cond.wait_for(
                        lambda: link._dirty or link._closed or self._dead is not None,
                        max(0.0, ping_due - now),
                    )
                if link._closed:
                    return
                if self._dead is not None:
                    raise _Dead(self._dead)
                dirty, link._dirty = link._dirty, False
                wanted, preload = link._wanted, link._preload
            now = time.monotonic()
            if now - self._last_heard > DEAD_AFTER_S:
                raise _Dead(f"no answer for {DEAD_AFTER_S:.0f} s")
            if dirty:
                self._apply(wanted, preload)
                continue
            if now - self._last_ping >= PING_EVERY_S:
                self._last_ping = now
                p.send_frame(self._sock, p.Msg.PING, p.PING.pack(now))
            if chunk is not None:
                sent, start, end = chunk
                self._send_pcm(sent, start, end)

    def _apply(self, wanted: Wanted | None, preload: Preload | None) -> None:
        current_load = wanted.load_id if wanted else preload.load_id if preload else None
        for key, sent in list(self._renders.items()):
            if sent.load_id != current_load:
                del self._renders[key]
                p.send_frame(self._sock, p.Msg.DROP, p.DROP.pack(sent.render_id))
        if wanted is None:
            playing, self._playing = self._playing, None
            if playing is not None:
                p.send_frame(self._sock, p.Msg.STOP, p.STOP.pack(playing.generation))
            return
        if wanted is self._playing:
            # Woken for something else (a preload): PLAY again would restart the device.
            return
        sent = self._render(
            wanted.load_id, wanted.speed, wanted.samples, wanted.rate, wanted.channels
        )
        first_end = min(sent.frames, wanted.start + _chunk_frames(sent.rate))
        gap = sent.ranges.first_gap(wanted.start, first_end)
        while gap is not None:
            self._send_pcm(sent, *gap)
            gap = sent.ranges.first_gap(gap[1], first_end)
        # Recorded before sending: on loopback the STARTED answer can beat the next line.
        self._playing, self._play_sent_at = wanted, time.monotonic()
        p.send_frame(
            self._sock, p.Msg.PLAY, p.PLAY.pack(wanted.generation, sent.render_id, wanted.start)
        )

    def _render(
        self, load_id: int, speed: float, samples: Int16Frames, rate: int, channels: int
    ) -> _Sent:
        key = (load_id, speed)
        sent = self._renders.get(key)
        if sent is None or sent.samples is not samples:
            sent = _Sent(self._next_render_id, load_id, samples, rate, channels)
            self._next_render_id += 1
            self._renders[key] = sent
            p.send_frame(
                self._sock,
                p.Msg.LOAD,
                p.LOAD.pack(sent.render_id, rate, channels, sent.frames),
            )
        return sent

    def _next_chunk(self) -> tuple[_Sent, int, int] | None:
        """The next ~100 ms to push: the playing render from its start frame, then its head,
        then the loaded clip at 1x (so a later play finds it on the laptop already)."""
        link = self._link
        wanted, preload = link._wanted, link._preload
        order: list[tuple[_Sent, int]] = []
        if wanted is not None and self._playing is wanted:
            sent = self._renders.get((wanted.load_id, wanted.speed))
            if sent is not None:
                order += [(sent, wanted.start), (sent, 0)]
        if preload is not None:
            key = (preload.load_id, 1.0)
            if key not in self._renders and not (wanted and wanted.load_id != preload.load_id):
                self._render(preload.load_id, 1.0, preload.samples, preload.rate, preload.channels)
            sent_1x = self._renders.get(key)
            if sent_1x is not None:
                order.append((sent_1x, 0))
        for sent, start in order:
            gap = sent.ranges.first_gap(start, sent.frames)
            if gap is not None:
                end = min(gap[1], gap[0] + _chunk_frames(sent.rate))
                return sent, gap[0], end
        return None

    def _send_pcm(self, sent: _Sent, start: int, end: int) -> None:
        data = sent.samples[start:end].data.cast("B")
        p.send_pcm(self._sock, sent.render_id, start, data)
        sent.ranges.add(start, end)

    # ----- reading ----------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            while True:
                kind, payload = p.recv_frame(self._sock)
                self._last_heard = time.monotonic()
                self._dispatch(kind, payload)
        except (OSError, p.ConnectionClosed, p.ProtocolViolation) as exc:
            self._mark_dead(_why(exc))

    def _mark_dead(self, why: str) -> None:
        with self._link._cond:
            if self._dead is None:
                self._dead = why
            self._link._cond.notify_all()

    def _dispatch(self, kind: int, payload: bytes) -> None:
        playing = self._playing
        if kind == p.Msg.PONG:
            (sent_at,) = p.unpack(p.PING, payload)
            self._link.rtt = time.monotonic() - float(sent_at)
        elif kind == p.Msg.STARTED:
            gen, relay_at, delay = p.unpack(p.STARTED, payload)
            if playing is None or gen != playing.generation:
                return
            now = time.monotonic()
            one_way = max(0.0, (now - self._play_sent_at - delay) / 2)
            self._link._on_started(
                Started(
                    gen,
                    playing.load_id,
                    self._play_sent_at + one_way + delay,
                    relay_at,
                    self._play_sent_at,
                )
            )
        elif kind == p.Msg.POSITION:
            gen, frame, is_playing = p.unpack(p.POSITION, payload)
            if playing is None or gen != playing.generation:
                return
            # Where the laptop is now: the report's frame plus half a round trip of travel.
            clip_pos = (frame / playing.rate + self._link.rtt / 2) * playing.speed
            self._link._on_position(playing.load_id, playing.speed, clip_pos, bool(is_playing))
        elif kind == p.Msg.BYE:
            reason = payload.decode("utf-8", "replace")
            if reason.startswith(p.BYE_REPLACED):
                # The newest session wins; reconnecting would take the laptop back and forth.
                self.replaced = True
            self._mark_dead(f"the relay said: {reason}")
        else:
            self._mark_dead(f"unexpected message type {kind} from the relay")


def _chunk_frames(rate: int) -> int:
    return max(1, round(rate * CHUNK_S))


def _refusal_text(payload: bytes) -> str:
    return "refused: " + payload[p.REFUSED.size :].decode("utf-8", "replace")


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or type(exc).__name__


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
