"""Plain records that cross from ingest into storage (no HTTP, no pydantic validation cost)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewClip:
    """A decoded, verified audio file ready to be queued.

    `source_name` is the ingested file's base name: kept for the admin export only and never sent
    to an annotator. `audio` is the served recording that ingest made from the file's samples
    (canonical tag-free WAV, see `api.server.ingest`); `sha256` is over those bytes, never over
    the original file.
    """

    sha256: str
    audio: bytes
    media_type: str  # audio/wav for everything ingest makes
    duration_s: float
    sample_rate: int
    channels: int
    locale: str
    source_name: str
    asr_hint: str | None = None
