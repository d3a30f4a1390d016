"""A fault-injecting TCP proxy for HTTP/1.1 on loopback, steered at runtime from another thread.

    proxy = ChaosProxy(upstream_port=server_port)
    proxy.start()                          # its own asyncio loop on a daemon thread
    QueueClient(proxy.url, token)          # clients talk to the proxy, never to the server
    proxy.set_latency(0.2)                 # windows: every chunk waits / is throttled
    proxy.arm(FaultKind.RESET_RESPONSE, 2, path_prefix="/v1/annotations")
    proxy.close()

Per-request faults need request boundaries, so the client→server direction frames HTTP/1.1
requests (head + Content-Length; anything chunked falls back to plain forwarding). No client of
ours pipelines, so the first server bytes after a request are that request's response: a fault
armed for a request is applied to the response chunks that follow it. Every fault that actually
fires is counted by kind (`counts()`); an armed fault that never meets a request is not counted.

Kinds:
- latency: each forwarded chunk (both directions) waits first;
- bandwidth: forwarded bytes are paced to a byte rate;
- reset_request: half the request reaches the server, then the client gets an RST;
- reset_response: the server answered (and may have stored the work), the client gets a prefix of
  the answer and then an RST (SO_LINGER 0) — the lost-acknowledgement case;
- truncate: as reset_response but an orderly FIN after the prefix — a short read;
- error_5xx: the proxy answers `503` itself and closes; the server never sees the request.
Server restarts are the run script's (it owns the server process); connections made while the
server is down are closed at once and counted as `upstream_down`.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections import Counter, deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum

LOOPBACK = "127.0.0.1"
READ_CHUNK = 64 * 1024
#: A request head larger than this is not HTTP we know how to frame: forward it untouched.
MAX_HEAD = 64 * 1024
UPSTREAM_CONNECT_TIMEOUT_S = 5.0
#: Bandwidth pacing granularity: small enough that a throttled 3 kB clip trickles, not jumps.
PACE_SLICE = 512

_BODY_503 = b'{"reason":"chaos_unavailable","message":"injected by the chaos proxy"}'
_RESPONSE_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Connection: close\r\n"
    b"Content-Length: " + str(len(_BODY_503)).encode() + b"\r\n"
    b"\r\n" + _BODY_503
)


class FaultKind(StrEnum):
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    RESET_REQUEST = "reset_request"
    RESET_RESPONSE = "reset_response"
    TRUNCATE = "truncate"
    ERROR_5XX = "error_5xx"


#: Faults that are armed for the next N requests (the others are windows of time).
PER_REQUEST = (
    FaultKind.ERROR_5XX,
    FaultKind.RESET_REQUEST,
    FaultKind.RESET_RESPONSE,
    FaultKind.TRUNCATE,
)


@dataclass(slots=True)
class _Armed:
    kind: FaultKind
    remaining: int
    path_prefix: str | None


@dataclass(frozen=True, slots=True)
class _Request:
    raw: bytes
    method: str
    path: str


class _Passthrough(Exception):
    """The bytes are not HTTP/1.1 we can frame; forward the rest of the connection untouched."""


def _split_request(buf: bytearray) -> _Request | None:
    """Pop one complete request off `buf`, or None when more bytes are needed."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise _Passthrough
        return None
    head = bytes(buf[:end]).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Passthrough
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "transfer-encoding":
            raise _Passthrough
        if name == "content-length":
            try:
                length = int(value.strip())
            except ValueError as e:
                raise _Passthrough from e
    total = end + 4 + length
    if len(buf) < total:
        return None
    raw = bytes(buf[:total])
    del buf[:total]
    return _Request(raw, parts[0], parts[1])


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN: SO_LINGER on with a zero timeout, then close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Conn:
    def __init__(
        self,
        creader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        ureader: asyncio.StreamReader,
        uwriter: asyncio.StreamWriter,
    ) -> None:
        self.creader, self.cwriter = creader, cwriter
        self.ureader, self.uwriter = ureader, uwriter
        #: Set before a request is forwarded; applied to the first response bytes after it.
        self.response_fault: FaultKind | None = None


class ChaosProxy:
    """One listening port on 127.0.0.1 forwarding to `upstream_port` on 127.0.0.1."""

    def __init__(self, upstream_port: int, *, seed: int = 0, listen_port: int = 0) -> None:
        self.upstream_port = upstream_port
        self._listen_port = listen_port
        self._rng = random.Random(seed)  # prefix lengths; only touched on the loop thread
        self._lock = threading.Lock()
        self._latency_s = 0.0
        self._bandwidth: int | None = None
        self._armed: deque[_Armed] = deque()
        self._counts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # ------------------------------------------------------------------ control (any thread)

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency_s = max(0.0, seconds)

    def set_bandwidth(self, bytes_per_s: int | None) -> None:
        with self._lock:
            self._bandwidth = None if not bytes_per_s else max(64, bytes_per_s)

    def arm(self, kind: FaultKind, count: int = 1, *, path_prefix: str | None = None) -> None:
        """Apply `kind` to the next `count` requests (whose path starts with `path_prefix`)."""
        if kind not in PER_REQUEST:
            raise ValueError(f"{kind} is a window, not a per-request fault")
        with self._lock:
            self._armed.append(_Armed(kind, count, path_prefix))

    def clear(self) -> None:
        """No more faults: windows closed, armed faults dropped (they never fired: not counted)."""
        with self._lock:
            self._latency_s = 0.0
            self._bandwidth = None
            self._armed.clear()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen on a free loopback port, serving from a daemon thread; returns once bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="chaos-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("the chaos proxy did not start")
        if failure:
            raise RuntimeError(f"the chaos proxy did not start: {failure[0]}")

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with suppress(RuntimeError):  # the loop may already be gone
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10.0)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10.0)
        self._loop = self._thread = None

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self._listen_port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ forwarding

    def _shaping(self) -> tuple[float, int | None]:
        with self._lock:
            return self._latency_s, self._bandwidth

    def _request_fault(self, path: str) -> FaultKind | None:
        with self._lock:
            for armed in self._armed:
                if armed.path_prefix is None or path.startswith(armed.path_prefix):
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._armed.remove(armed)
                    self._counts[armed.kind] += 1
                    return armed.kind
            return None

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Forward one chunk, late by the latency and paced to the bandwidth in force."""
        latency, bandwidth = self._shaping()
        if latency:
            self.count("latency_chunks")
            await asyncio.sleep(latency)
        if bandwidth is None:
            writer.write(data)
            await writer.drain()
            return
        self.count("bandwidth_chunks")
        for i in range(0, len(data), PACE_SLICE):
            piece = data[i : i + PACE_SLICE]
            await asyncio.sleep(len(piece) / bandwidth)
            writer.write(piece)
            await writer.drain()

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(creader, cwriter)
        except (OSError, asyncio.IncompleteReadError):
            pass  # either side went away; that is what this proxy is for
        finally:
            self._tasks.discard(task)
            cwriter.transport.abort()

    async def _serve(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.count("connections")
        try:
            ureader, uwriter = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, self.upstream_port), UPSTREAM_CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            self.count("upstream_down")
            return
        conn = _Conn(creader, cwriter, ureader, uwriter)
        pumps = [
            asyncio.create_task(self._client_to_server(conn)),
            asyncio.create_task(self._server_to_client(conn)),
        ]
        try:
            # Either direction ending ends the connection: our clients never half-close.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            uwriter.transport.abort()

    async def _client_to_server(self, conn: _Conn) -> None:
        buf = bytearray()
        passthrough = False
        while True:
            data = await conn.creader.read(READ_CHUNK)
            if not data:
                return
            if passthrough:
                await self._send(conn.uwriter, data)
                continue
            buf += data
            while True:
                try:
                    request = _split_request(buf)
                except _Passthrough:
                    passthrough = True
                    self.count("passthrough_connections")
                    await self._send(conn.uwriter, bytes(buf))
                    buf.clear()
                    break
                if request is None:
                    break
                if not await self._forward_request(conn, request):
                    return

    async def _forward_request(self, conn: _Conn, request: _Request) -> bool:
        """Forward one request, or inject its fault. False when the connection is finished."""
        self.count("requests")
        fault = self._request_fault(request.path)
        if fault is FaultKind.ERROR_5XX:
            await self._send(conn.cwriter, _RESPONSE_503)
            conn.cwriter.close()
            return False
        if fault is FaultKind.RESET_REQUEST:
            half = request.raw[: max(1, len(request.raw) // 2)]
            await self._send(conn.uwriter, half)
            await asyncio.sleep(0.005)  # let the server read the half it got
            _rst(conn.cwriter)
            return False
        # Response faults are set before any byte of the request leaves, so the response cannot
        # overtake the flag.
        conn.response_fault = fault
        await self._send(conn.uwriter, request.raw)
        return True

    async def _server_to_client(self, conn: _Conn) -> None:
        while True:
            data = await conn.ureader.read(READ_CHUNK)
            if not data:
                return
            fault, conn.response_fault = conn.response_fault, None
            if fault is FaultKind.TRUNCATE:
                await self._send(conn.cwriter, data[: len(data) // 2])
                conn.cwriter.close()
                return
            if fault is FaultKind.RESET_RESPONSE:
                prefix = data[: self._rng.randint(0, len(data) // 2)]
                if prefix:
                    await self._send(conn.cwriter, prefix)
                    await asyncio.sleep(0.005)  # the prefix reaches the client before the RST
                _rst(conn.cwriter)
                return
            await self._send(conn.cwriter, data)


class NetworkFaults:
    """Fires random network faults at a proxy, from a seeded RNG, and counts them by kind.

    `step()` fires one fault and returns how long to wait before the next. The first
    `len(FaultKind)` steps go through every kind once in a shuffled order, so even a short run
    exercises each of them. Windows (latency, bandwidth) are closed by a later step, by `clear()`,
    or at `step()` after their end time.
    """

    def __init__(
        self,
        proxy: ChaosProxy,
        rng: random.Random,
        *,
        interval: tuple[float, float] = (0.5, 2.5),
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.proxy = proxy
        self.rng = rng
        self.interval = interval
        self._clock = clock or time.monotonic
        self._first_round: list[FaultKind] = list(FaultKind)
        rng.shuffle(self._first_round)
        self._latency_until = 0.0
        self._bandwidth_until = 0.0
        #: Windows opened and requests armed, by kind (fired per-request faults: proxy.counts()).
        self.opened: Counter[str] = Counter()

    def _expire_windows(self, now: float) -> None:
        if self._latency_until and now >= self._latency_until:
            self.proxy.set_latency(0.0)
            self._latency_until = 0.0
        if self._bandwidth_until and now >= self._bandwidth_until:
            self.proxy.set_bandwidth(None)
            self._bandwidth_until = 0.0

    def step(self) -> float:
        now = self._clock()
        self._expire_windows(now)
        kind = self._first_round.pop() if self._first_round else self.rng.choice(list(FaultKind))
        rng = self.rng
        if kind is FaultKind.LATENCY:
            self.proxy.set_latency(rng.choice((0.02, 0.05, 0.1, 0.3, 0.8)))
            self._latency_until = now + rng.uniform(1.0, 5.0)
        elif kind is FaultKind.BANDWIDTH:
            self.proxy.set_bandwidth(rng.choice((2_000, 8_000, 32_000)))
            self._bandwidth_until = now + rng.uniform(1.0, 4.0)
        elif kind is FaultKind.ERROR_5XX:
            # A burst: the next few requests, whatever they are.
            self.proxy.arm(kind, rng.randint(2, 6))
        else:
            # Half the time aim at submissions: a stored annotation whose receipt is lost is the
            # case exactly-once exists for.
            prefix = "/v1/annotations" if rng.random() < 0.5 else None
            self.proxy.arm(kind, rng.randint(1, 3), path_prefix=prefix)
        self.opened[kind] += 1
        return rng.uniform(*self.interval)

    def clear(self) -> None:
        self._latency_until = self._bandwidth_until = 0.0
        self.proxy.clear()
