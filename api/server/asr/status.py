"""Whether machine drafts can be made here, in one line for `serve`'s start-up and `doctor`."""

from __future__ import annotations

from dataclasses import dataclass

from api.server.asr.errors import AsrUnavailable
from api.server.asr.model import (
    ENGINE_DIST,
    ENGINE_NAME,
    INSTALL_HINT,
    engine_installed,
    model_dir,
    verify_model,
)


@dataclass(frozen=True, slots=True)
class AsrStatus:
    available: bool
    #: One line: the engine and model, or why there is none and how to get it.
    detail: str


def asr_status(*, check_model: bool = True) -> AsrStatus:
    """Is the `asr` extra installed (and, with `check_model`, its model intact)? Never raises."""
    if not engine_installed():
        return AsrStatus(
            False, f"off: faster-whisper ({ENGINE_DIST}) is not installed — {INSTALL_HINT}"
        )
    try:
        directory = model_dir()
        if check_model:
            verify_model(directory)
    except AsrUnavailable as e:
        return AsrStatus(False, f"off: {e}")
    return AsrStatus(True, f"{ENGINE_NAME}" + (" (model hash verified)" if check_model else ""))


def asr_status_line(*, check_model: bool = True) -> str:
    """`ASR drafts: …` for serve's start-up (which skips hashing the model: it never loads it)
    and `annotator asr status`."""
    return f"ASR drafts: {asr_status(check_model=check_model).detail}"
