"""Pick a playback backend (`--audio`), falling back to a muted player with the reason.

Opening never plays a sound and never crashes without a sound card: simpleaudio is probed by
opening ALSA's default PCM non-blocking, miniaudio by opening (not starting) a device.
`probe_backend` is the loud check for `annotator doctor`: it plays a 200 ms tone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from annotator.audio.alsa import probe_default_pcm, silence_alsa_errors
from annotator.audio.decode import DecodedAudio
from annotator.audio.null_player import NullPlayer
from annotator.audio.player import BackendUnavailableError, BasePlayer, Player

CHOICES = ("auto", "simpleaudio", "miniaudio", "relay", "pulse", "none")
DOCTOR_HINT = "see `annotator doctor`"


@dataclass(frozen=True)
class BackendProbe:
    works: bool
    detail: str


def _open_simpleaudio() -> BasePlayer:
    from annotator.audio.simpleaudio_player import SimpleaudioPlayer, import_simpleaudio

    import_simpleaudio()
    problem = probe_default_pcm()
    if problem is not None:
        raise BackendUnavailableError(problem)
    return SimpleaudioPlayer()


def _open_miniaudio() -> BasePlayer:
    from annotator.audio.miniaudio_player import MiniaudioPlayer, import_miniaudio, open_device

    ma = import_miniaudio()
    open_device(ma, 48000, 2).close()
    return MiniaudioPlayer()


def _open_pulse() -> BasePlayer:
    from annotator.audio.miniaudio_player import MiniaudioPlayer, import_miniaudio, open_device

    ma = import_miniaudio()
    open_device(ma, 48000, 2, pulse=True).close()
    return MiniaudioPlayer(pulse=True)


_OPENERS: dict[str, Callable[[], BasePlayer]] = {
    "simpleaudio": _open_simpleaudio,
    "miniaudio": _open_miniaudio,
    "pulse": _open_pulse,
}


def open_player(
    choice: str, *, relay: str | None = None, relay_secret: str | None = None
) -> tuple[Player, str]:
    """The player for `--audio choice` and a one-line reason for the status bar.

    `auto` picks the SSH relay when one is configured (here or in ANNOTATOR_RELAY), else a working
    local device, else none. Never raises: anything that cannot play yields a NullPlayer (muted,
    playhead still moves).
    """
    return _open(choice, relay=relay, relay_secret=relay_secret)


def _open(
    choice: str, *, relay: str | None = None, relay_secret: str | None = None
) -> tuple[BasePlayer, str]:
    silence_alsa_errors()
    key = (choice or "auto").strip().lower()
    if key == "none":
        return NullPlayer(), "audio off (--audio none): muted"
    from annotator.relay import relay_configured

    if key == "relay" or (key == "auto" and relay_configured(relay)):
        from annotator.relay.player import open_relay_player

        try:
            rp = open_relay_player(relay, relay_secret)
        except BackendUnavailableError as exc:
            return NullPlayer(), f"relay: {exc}: muted; {DOCTOR_HINT}"
        return rp, f"relay to {rp.address} (your laptop's `annotator relay`)"
    if key not in CHOICES:
        return NullPlayer(), (
            f"unknown audio backend {choice!r} (choose one of {', '.join(CHOICES)}): muted"
        )
    names = ["simpleaudio", "miniaudio"] if key == "auto" else [key]
    failures: list[str] = []
    for name in names:
        try:
            player = _OPENERS[name]()
        except BackendUnavailableError as exc:
            failures.append(f"{name}: {exc}")
            continue
        if name == "pulse":
            server = os.environ.get("PULSE_SERVER", "the local PulseAudio/PipeWire server")
            return player, f"pulse via {server}"
        return player, f"{name} on the default output device"
    return NullPlayer(), f"no audio device ({'; '.join(failures)}): muted; {DOCTOR_HINT}"


def probe_backend(choice: str, tone_s: float = 0.2, timeout: float = 3.0) -> BackendProbe:
    """Play a short 440 Hz tone through `choice` and check the device took all of it."""
    player, reason = _open(choice)
    try:
        if isinstance(player, NullPlayer):
            return BackendProbe(False, reason)
        player.load(_tone(tone_s))
        started = time.monotonic()
        player.play()
        drained = player.wait_drained(timeout)
        if player.last_error is not None:
            return BackendProbe(
                False, f"{player.name}: the device refused audio: {player.last_error}"
            )
        if player.first_frame_at is None or not drained:
            return BackendProbe(
                False, f"{player.name}: the device did not take the tone within {timeout:.0f} s"
            )
        took_ms = (player.first_frame_at - started) * 1000
        return BackendProbe(
            True, f"{reason}; played a {tone_s * 1000:.0f} ms tone (started in {took_ms:.1f} ms)"
        )
    finally:
        player.close()


def _tone(seconds: float, rate: int = 48000, freq: float = 440.0) -> DecodedAudio:
    t = np.arange(round(seconds * rate)) / rate
    # A 10 ms fade in and out so the check does not click.
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
    mono = (np.sin(2 * np.pi * freq * t) * fade * 0.2 * 32767).astype(np.int16)
    samples = np.ascontiguousarray(np.stack([mono, mono], axis=1))
    return DecodedAudio(samples=samples, sample_rate=rate, channels=2, duration_s=seconds)
