"""The ASR engine interface and the house style every engine's words are put into.

An engine takes mono float32 samples at 16 kHz (`SAMPLE_RATE`) and returns a `Draft`: the words
it heard, each with the engine's confidence in [0, 1]. The draft's text is always the words
joined by single spaces, so a client can underline word i of the text from `words[i]` alone.

House style (what an annotator would type): lower case, no sentence punctuation, apostrophes
kept, numbers in words where they read one way (`numbers.spell`: "7:30" → "seven thirty"). It is
applied here, once, so every engine's drafts compare alike in the bench and in the editor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from api.models import LOW_CONFIDENCE  # the one threshold, shared with the TUI
from api.server.asr.errors import AsrUnavailable, ClipNotTranscribable
from api.server.asr.numbers import spell

__all__ = ["LOW_CONFIDENCE", "AsrUnavailable", "ClipNotTranscribable"]

SAMPLE_RATE = 16_000

Samples = npt.NDArray[np.float32]

# Edge punctuation of a word, and marks that only belong between digits.
_EDGE = re.compile(r"^[^\w']+|[^\w']+$")
_INNER_MARK = re.compile(r"(?<!\d)[.:,](?!\d)|[!?;\"“”‘’()\[\]{}…]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class WordConfidence:
    word: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Draft:
    words: tuple[WordConfidence, ...]

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


class AsrEngine(Protocol):
    """What ingest and backfill need from a recogniser."""

    #: Names the engine and model in reports, e.g. "faster-whisper tiny.en int8".
    name: str

    def transcribe(self, samples: Samples) -> Draft:
        """Words heard in `samples` (mono float32, `SAMPLE_RATE`); raises ClipNotTranscribable."""
        ...

    def decode(self, data: bytes) -> Samples:
        """An audio file's bytes as the samples `transcribe` takes; raises ClipNotTranscribable."""
        ...


def house_word(raw: str) -> str:
    """One recognised word in house style ("" when nothing is left, e.g. a lone dash)."""
    word = _INNER_MARK.sub("", raw.strip().lower().replace("’", "'"))
    return _EDGE.sub("", word)


def make_draft(pieces: list[tuple[str, float]]) -> Draft:
    """A Draft from an engine's raw (word, confidence) pieces: words split on blanks and put in
    house style, empty ones dropped, confidences clamped to [0, 1]."""
    words: list[WordConfidence] = []
    for raw, confidence in pieces:
        conf = min(1.0, max(0.0, float(confidence))) if np.isfinite(confidence) else 0.0
        # "15%" is said "fifteen percent": the sign would otherwise go with the punctuation.
        for part in _SPACES.split(raw.replace("%", " percent ")):
            if word := house_word(part):
                words += [WordConfidence(w, round(conf, 3)) for w in spell(word)]
    return Draft(tuple(words))
