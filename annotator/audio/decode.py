"""Turn a downloaded clip into int16 frames the playback backends accept.

Everything happens in memory: the clip bytes never touch the disk in plaintext (the cache stores
them encrypted), so soundfile reads from a BytesIO.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import soundfile as sf

if TYPE_CHECKING:
    from annotator.audio.gain import ClipLevels

Int16Frames = npt.NDArray[np.int16]

# The rates simpleaudio accepts that make sense for speech; miniaudio takes anything. Anything
# else is resampled to the nearest of these at or above it (capped at 48 kHz).
DEVICE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_CHANNELS = 2
# A voice-assistant clip is about 30 s; a bound keeps a bogus upload from eating the RAM.
DEFAULT_MAX_SECONDS = 15 * 60.0

_FORMATS_HINT = "expected WAV, FLAC, OGG Vorbis/Opus or MP3"


class AudioDecodeError(Exception):
    """The clip cannot be played; the message says why, in words an annotator can act on."""


class ChecksumError(AudioDecodeError):
    """The downloaded bytes are not the clip the server announced."""


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Interleaved int16 frames, shape (frames, channels), C-contiguous, ready for a device."""

    samples: Int16Frames
    sample_rate: int
    channels: int
    duration_s: float

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @cached_property
    def levels(self) -> ClipLevels:
        """Peak headroom and speech RMS (the gain's cap and the loudness normalisation)."""
        from annotator.audio.gain import measure

        return measure(self.samples, self.sample_rate)


def verify_sha256(data: bytes, expected: str) -> None:
    """Raise ChecksumError unless sha256(data) equals `expected` (hex, any case)."""
    want = expected.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", want):
        raise ChecksumError(
            f"the server sent a malformed checksum ({expected[:70]!r}); "
            "it should be 64 hex digits — skip the clip and report it"
        )
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise ChecksumError(
            f"clip is corrupt: sha256 {got[:12]}… does not match the expected {want[:12]}… "
            f"({len(data)} bytes received); it will be downloaded again, or skip it"
        )


def decode(data: bytes, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> DecodedAudio:
    """Decode WAV/FLAC/OGG/MP3 bytes into int16 frames at a device-friendly rate.

    Raises AudioDecodeError saying whether the bytes are empty, not audio, truncated or damaged.
    """
    if not data:
        raise AudioDecodeError("clip is empty (0 bytes received)")
    _check_container_complete(data)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, channels, declared = f.samplerate, f.channels, f.frames
            if rate <= 0 or channels <= 0:
                raise AudioDecodeError(f"clip header is damaged ({rate} Hz, {channels} channels)")
            if declared / rate > max_seconds:
                raise AudioDecodeError(
                    f"clip is too long ({declared / rate:.0f} s; the limit is {max_seconds:.0f} s)"
                )
            audio = f.read(dtype="float32", always_2d=True)
    except sf.SoundFileError as exc:
        raise AudioDecodeError(_explain(exc)) from exc
    frames = audio.shape[0]
    if frames == 0:
        raise AudioDecodeError("clip is empty (the file holds no audio frames)")
    # libsndfile reports the header's frame count; reading fewer means the tail is missing.
    if 0 < declared < (1 << 62) and frames < declared * 0.99:
        raise AudioDecodeError(
            f"clip is truncated: {frames / rate:.1f} s of the announced {declared / rate:.1f} s "
            "could be read; download it again or skip it"
        )
    audio = _downmix(audio)
    target = device_rate(rate)
    if target != rate:
        audio = _resample(audio, rate, target)
    samples = np.ascontiguousarray(_to_int16(audio))
    decoded = DecodedAudio(
        samples=samples,
        sample_rate=target,
        channels=int(samples.shape[1]),
        duration_s=samples.shape[0] / target,
    )
    # Measured here, on the decoding (prefetch) thread, so `Player.load` does not pay for it.
    _ = decoded.levels
    return decoded


def device_rate(rate: int) -> int:
    """The rate we hand to the device for a file recorded at `rate`."""
    if rate in DEVICE_RATES:
        return rate
    return next((r for r in DEVICE_RATES if r >= rate), DEVICE_RATES[-1])


def envelope(audio: DecodedAudio, buckets: int) -> list[float]:
    """Peak level per bucket, 0..1 relative to the loudest bucket (the waveform strip)."""
    if buckets <= 0 or audio.frames == 0:
        return []
    frames = audio.frames
    edges = np.linspace(0, frames, buckets + 1).astype(np.int64)
    # reduceat wants increasing starts inside the array; buckets narrower than a frame reuse
    # that frame. Max and min stay int16 (no full-size copy); int32 so -(-32768) fits.
    starts = np.minimum(edges[:-1], frames - 1)
    highs = np.maximum.reduceat(audio.samples, starts, axis=0).astype(np.int32)
    lows = np.minimum.reduceat(audio.samples, starts, axis=0).astype(np.int32)
    per_bucket = np.maximum(highs, -lows).max(axis=1)
    top = int(per_bucket.max())
    if top == 0:
        return [0.0] * buckets
    return (per_bucket / top).astype(float).tolist()  # type: ignore[no-any-return]


def _explain(exc: sf.SoundFileError) -> str:
    # soundfile prefixes "Error opening <_io.BytesIO object at 0x…>: "; the rest is libsndfile's.
    detail = re.sub(r"^Error opening [^:]*: ", "", str(exc)).strip() or "unknown error"
    if "Format not recognised" in detail:
        return f"clip is not audio (format not recognised; {_FORMATS_HINT})"
    return f"clip is damaged or truncated ({detail}); download it again or skip it"


def _check_container_complete(data: bytes) -> None:
    """libsndfile quietly plays a cut-off WAV or Ogg file as a shorter clip; catch those."""
    if data[:4] in (b"RIFF", b"RIFX") and data[8:12] == b"WAVE":
        _check_wav_complete(data)
    elif data[:4] == b"OggS":
        _check_ogg_complete(data)


def _is_placeholder(size: int) -> bool:
    # Writers streaming to a pipe (espeak-ng --stdout, sox -) cannot know the length and write
    # 0, 0xFFFFFFFF or a large dummy such as 0x7FFFF000.
    return size == 0 or size >= 0x7FFF0000


def _check_wav_complete(data: bytes) -> None:
    endian = "<" if data[:4] == b"RIFF" else ">"
    (riff_size,) = struct.unpack(endian + "I", data[4:8])
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack(endian + "I", data[pos + 4 : pos + 8])
        if chunk_id == b"data":
            available = len(data) - pos - 8
            if not _is_placeholder(size) and not _is_placeholder(riff_size) and available < size:
                raise AudioDecodeError(
                    f"clip is truncated: {available} of {size} audio bytes arrived; "
                    "download it again or skip it"
                )
            return
        pos += 8 + size + (size & 1)
    raise AudioDecodeError("clip is truncated: the WAV header has no audio data chunk")


def _check_ogg_complete(data: bytes) -> None:
    """The last Ogg page must be whole and carry the end-of-stream flag."""
    last = data.rfind(b"OggS")
    header = data[last : last + 27]
    complete = len(header) == 27
    if complete:
        segments = header[26]
        table = data[last + 27 : last + 27 + segments]
        complete = (
            len(table) == segments
            and last + 27 + segments + sum(table) <= len(data)
            and bool(header[5] & 0x04)
        )
    if not complete:
        raise AudioDecodeError(
            "clip is truncated: the Ogg stream stops before its end; download it again or skip it"
        )


def _downmix(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """More than two channels (mic arrays, 5.1) → stereo: even channels left, odd right."""
    if audio.shape[1] <= MAX_CHANNELS:
        return audio
    left = audio[:, 0::2].mean(axis=1)
    right = audio[:, 1::2].mean(axis=1)
    return np.stack([left, right], axis=1).astype(np.float32)


def _resample(audio: npt.NDArray[np.float32], src: int, dst: int) -> npt.NDArray[np.float32]:
    """Linear-interpolation resampling for the rare odd rate (4 kHz, 12 kHz, 96 kHz files).

    Good enough for speech review; downsampling first averages over the ratio so the content
    above the new Nyquist frequency is damped rather than folded back.
    """
    if dst < src:
        width = round(src / dst)
        if width > 1:
            kernel = np.ones(width, dtype=np.float32) / width
            audio = np.stack(
                [np.convolve(audio[:, c], kernel, mode="same") for c in range(audio.shape[1])],
                axis=1,
            )
    n_out = max(1, round(audio.shape[0] * dst / src))
    src_t = np.arange(audio.shape[0], dtype=np.float64) / src
    dst_t = np.arange(n_out, dtype=np.float64) / dst
    out = np.stack([np.interp(dst_t, src_t, audio[:, c]) for c in range(audio.shape[1])], axis=1)
    return out.astype(np.float32)


def _to_int16(audio: npt.NDArray[np.float32]) -> Int16Frames:
    # libsndfile maps int16 to float by /32768, so *32768 round-trips 16-bit files exactly.
    scaled = np.rint(audio * 32768.0)
    out: Int16Frames = np.clip(scaled, -32768, 32767).astype(np.int16)
    return out
