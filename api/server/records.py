"""Plain records that cross from ingest into storage (no HTTP, no pydantic validation cost)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewClip:
    """A decoded, verified audio file ready to be queued.

    `source_name` is the ingested file's base name: kept for the admin export only and never sent
    to an annotator. `audio` is the file's bytes exactly as ingested (`sha256` is over them).
    """

    sha256: str
    audio: bytes
    media_type: str  # e.g. audio/wav, audio/flac, audio/ogg, audio/mpeg
    duration_s: float
    sample_rate: int
    channels: int
    locale: str
    source_name: str
    asr_hint: str | None = None
