"""Synthetic clips for the audio tests, built in memory."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf


def sweep(seconds: float = 1.5, rate: int = 16000, channels: int = 1) -> np.ndarray:
    """A speech-band sine sweep (150 Hz → 3.5 kHz) with a syllable-like amplitude wobble."""
    t = np.arange(round(seconds * rate)) / rate
    f0, f1 = 150.0, 3500.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    wobble = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    mono = (np.sin(phase) * wobble * 0.6).astype(np.float32)
    return np.stack([mono * (1.0 - 0.3 * c) for c in range(channels)], axis=1)


def tone(freq: float, seconds: float = 2.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.5).astype(np.float32).reshape(-1, 1)


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def espeak_wav(text: str = "Set a timer for ten minutes, please.") -> bytes | None:
    """Real synthetic speech from espeak-ng (None where it is not installed)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    return subprocess.run([exe, "--stdout", text], capture_output=True, check=True).stdout


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    mono = samples.astype(np.float64).mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.shape[0])))
    return float(np.fft.rfftfreq(mono.shape[0], 1 / rate)[int(np.argmax(spectrum))])
