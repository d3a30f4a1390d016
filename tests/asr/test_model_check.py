"""The model file is hash-checked before CTranslate2 reads it; a tampered one is refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from api.server.asr.engine import AsrUnavailable
from api.server.asr.whisper import MODEL_SHA256, WhisperEngine, model_dir, verify_model


def _copy_of_model(tmp_path: Path) -> Path:
    """The installed model's small files copied and model.bin hard-linked or copied (75 MB)."""
    src, dst = model_dir(), tmp_path / "model"
    dst.mkdir()
    for f in src.iterdir():
        shutil.copyfile(f, dst / f.name)
    return dst


def test_the_installed_model_passes(tmp_path: Path) -> None:
    assert verify_model(model_dir()) == model_dir()


def test_a_tampered_model_is_refused_before_loading(tmp_path: Path) -> None:
    copy = _copy_of_model(tmp_path)
    weights = copy / "model.bin"
    with open(weights, "r+b") as f:  # one flipped byte deep inside the weights
        f.seek(40_000_000)
        byte = f.read(1)
        f.seek(40_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(AsrUnavailable) as refused:
        WhisperEngine(directory=copy)
    message = str(refused.value)
    assert f"refusing to load {weights}" in message
    assert MODEL_SHA256 in message and "reinstall" in message


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AsrUnavailable, match=r"model\.bin is missing"):
        verify_model(tmp_path)
