"""Volume: the annotator's gain steps and the optional loudness normalisation, as pure maths.

Far-field recordings are often 20–30 dB below a close-talk one, so the player boosts them; a boost
must never clip (a clipped clip sounds distorted and hides words), so every gain is capped at the
clip's own headroom: 20·log10(32767 / peak). The cap is per clip; the annotator's chosen step
carries over to the next clip and is capped again there.

Loudness normalisation is RMS over the clip's active parts (50 ms blocks within 40 dB of the
loudest block — the idea of BS.1770's gate without its K-weighting filter, which changes little
for band-limited speech and would need scipy). The result is a gain in dB that the player adds to
the annotator's own step, under the same cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from annotator.audio.decode import Int16Frames

GAIN_STEP_DB = 6.0
MIN_GAIN_DB = -24.0
MAX_GAIN_DB = 24.0
DEFAULT_LOUDNESS_DBFS = -20.0
_FULL_SCALE = 32767.0
_BLOCK_S = 0.05
_GATE_DB = 40.0
# Silence (or near-silence) is not boosted past this: it would only raise the noise floor.
_MAX_NORMALISE_DB = 30.0


@dataclass(frozen=True, slots=True)
class ClipLevels:
    """What a clip allows: its headroom (the most gain that cannot clip) and its RMS level."""

    headroom_db: float
    """20·log10(32767 / peak); +inf for a silent clip."""
    rms_dbfs: float | None
    """RMS of the active blocks in dB full scale; None for a silent clip."""


def measure(samples: Int16Frames, sample_rate: int) -> ClipLevels:
    """The clip's peak headroom and active-speech RMS (about 1 ms for 30 s at 16 kHz mono;
    `decode` runs it on the decoding thread)."""
    if samples.size == 0:
        return ClipLevels(math.inf, None)
    peak = max(int(samples.max()), -int(samples.min()))
    if peak == 0:
        return ClipLevels(math.inf, None)
    headroom = 20.0 * math.log10(_FULL_SCALE / peak)
    # Column by column: numpy's reduction over a 2-wide axis is ten times slower.
    mono = samples[:, 0].astype(np.float32)
    for channel in range(1, samples.shape[1]):
        mono += samples[:, channel]
    mono /= np.float32(32768.0 * samples.shape[1])
    block = max(1, int(sample_rate * _BLOCK_S))
    usable = (mono.shape[0] // block) * block
    if usable == 0:
        powers = np.array([float(np.mean(np.square(mono), dtype=np.float64))])
    else:
        powers = np.square(mono[:usable]).reshape(-1, block).mean(axis=1, dtype=np.float64)
    loudest = float(powers.max())
    if loudest <= 0.0:
        return ClipLevels(headroom, None)
    active = powers[powers >= loudest * 10 ** (-_GATE_DB / 10)]
    rms = 10.0 * math.log10(float(active.mean()))
    return ClipLevels(headroom, rms)


def normalising_gain_db(levels: ClipLevels, target_dbfs: float) -> float:
    """The gain that brings the clip's RMS to `target_dbfs` (0 for silence), before the cap."""
    if levels.rms_dbfs is None:
        return 0.0
    return min(_MAX_NORMALISE_DB, target_dbfs - levels.rms_dbfs)


def clamp_step(gain_db: float) -> float:
    """The annotator's gain, kept on the ±24 dB range (NaN → 0)."""
    if not math.isfinite(gain_db):
        return 0.0
    return min(MAX_GAIN_DB, max(MIN_GAIN_DB, gain_db))


def effective_gain_db(requested_db: float, levels: ClipLevels) -> float:
    """`requested_db` capped at the clip's headroom, so the result never clips."""
    return min(requested_db, levels.headroom_db)


def apply_gain(samples: Int16Frames, gain_db: float) -> Int16Frames:
    """The samples scaled by `gain_db`; the same array when the gain is 0 dB.

    The clip at np.clip only guards rounding at the cap (a peak of 32767.4 → 32767): callers cap
    the gain at the headroom, so no sample is ever flattened by it.
    """
    if gain_db == 0.0 or samples.size == 0:
        return samples
    factor = 10.0 ** (gain_db / 20.0)
    scaled = np.rint(samples.astype(np.float32) * np.float32(factor))
    out: Int16Frames = np.ascontiguousarray(np.clip(scaled, -32768, 32767).astype(np.int16))
    return out


def describe(gain_db: float, *, capped: bool) -> str:
    """How the player bar shows it: "+6 dB", "−6 dB", "+4.2 dB max" (empty at 0 dB uncapped)."""
    if abs(gain_db) < 0.05 and not capped:
        return ""
    sign = "+" if gain_db >= 0.05 else "−" if gain_db <= -0.05 else "±"
    text = f"{sign}{abs(gain_db):.1f}".removesuffix(".0") + " dB"
    return f"{text} max" if capped else text
