"""Decoding and playback of clips: `decode` bytes, `open_player` a backend, drive the `Player`.

Backends (simpleaudio, miniaudio) are imported only when `open_player` picks them.
"""

from annotator.audio.backends import BackendProbe, open_player, probe_backend
from annotator.audio.decode import (
    AudioDecodeError,
    ChecksumError,
    DecodedAudio,
    decode,
    envelope,
    verify_sha256,
)
from annotator.audio.null_player import NullPlayer
from annotator.audio.player import BasePlayer, Player

__all__ = [
    "AudioDecodeError",
    "BackendProbe",
    "BasePlayer",
    "ChecksumError",
    "DecodedAudio",
    "NullPlayer",
    "Player",
    "decode",
    "envelope",
    "open_player",
    "probe_backend",
    "verify_sha256",
]
