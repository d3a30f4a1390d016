"""Helpers for the relay tests: a real `annotator relay` process and clips in memory.

The relay runs in its own process with HOME pointing at a tmp dir whose .asoundrc sends ALSA's
default PCM to the file plugin (alsa-lib reads its config once per process), so the "laptop's
sound card" is a capture file the test reads back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from annotator.audio.decode import DecodedAudio
from tests.audio.clips import sweep
from tests.fixtures.audio import AlsaFileSink
from tests.fixtures.server import REPO_ROOT, annotator_command

SECRET = "test-pair-ing0-secr-et00-abcd-ef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clip(seconds: float = 1.0, rate: int = 16000, channels: int = 1) -> DecodedAudio:
    samples = np.ascontiguousarray(
        np.clip(np.rint(sweep(seconds, rate, channels) * 32767), -32768, 32767).astype(np.int16)
    )
    return DecodedAudio(
        samples=samples,
        sample_rate=rate,
        channels=channels,
        duration_s=samples.shape[0] / rate,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@dataclass
class RelayProcess:
    """A real `annotator relay` subprocess; its stdout banner and stderr log are collected."""

    port: int
    sink: AlsaFileSink
    audio: str = "simpleaudio"
    secret: str | None = SECRET  # None: the relay's own stored secret (ANNOTATOR_HOME)
    extra_env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def start(self, timeout: float = 20.0) -> RelayProcess:
        env = self.sink.env(**self.extra_env)
        env.pop("ANNOTATOR_RELAY_SECRET", None)
        if self.secret is not None:
            env["ANNOTATOR_RELAY_SECRET"] = self.secret
        self.stdout, self.stderr = [], []
        self.proc = subprocess.Popen(
            [
                *annotator_command(),
                "relay",
                "--port",
                str(self.port),
                "--audio",
                self.audio,
                *self.args,
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()
        if not wait_for(lambda: any("listening on" in line for line in self.stdout), timeout):
            self.stop()
            raise AssertionError(f"relay did not start: {self.output}")
        return self

    @property
    def output(self) -> str:
        return "".join(self.stdout) + "\n--- stderr ---\n" + "".join(self.stderr)

    @property
    def shown_secret(self) -> str:
        """The pairing secret the banner shows (a stored one; never with `secret` set)."""
        lines = [line for line in self.stdout if line.startswith("pairing secret: ")]
        assert len(lines) == 1, self.output
        return lines[0].removeprefix("pairing secret: ").strip()

    @property
    def log(self) -> str:
        return "".join(self.stderr)

    def kill(self) -> None:
        """SIGKILL: the relay vanishes as it would when the laptop sleeps or the tunnel dies."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def _pump(stream: object, sink: list[str]) -> None:
    assert hasattr(stream, "readline")
    for line in iter(stream.readline, ""):
        sink.append(line)


def settled_capture(sink: AlsaFileSink, timeout: float = 10.0, quiet: float = 0.3) -> bytes:
    """The capture once the device has stopped writing to it (non-empty, unchanged for `quiet`)."""
    deadline = time.monotonic() + timeout
    last, since = b"", time.monotonic()
    while time.monotonic() < deadline:
        got = sink.read()
        if got != last:
            last, since = got, time.monotonic()
        elif got and time.monotonic() - since >= quiet:
            return got
        time.sleep(0.02)
    raise AssertionError(f"the capture did not settle ({len(last)} bytes)")
