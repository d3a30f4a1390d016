"""The reference server's settings: one frozen model that `serve` builds from its flags.

It travels to `--workers` processes as JSON in an environment variable (see `app.app_from_env`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from api.models import MAX_TTL_SECONDS, MIN_TTL_SECONDS
from api.server.paths import default_data_dir, default_db_path

#: Request bodies above these sizes are refused with 413 before they are parsed.
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The queue database: `sqlite:///PATH` or `postgresql://USER@HOST[:PORT]/DB`. None means
    #: SQLite at `db_path`.
    db_url: str | None = None
    db_path: Path = Field(default_factory=default_db_path)
    data_dir: Path = Field(default_factory=default_data_dir)
    #: A deployment's own taxonomy JSON; None serves the shipped default.
    taxonomy_path: Path | None = None
    #: K: how many annotations (from distinct annotators) a clip needs before it leaves the queue.
    #: None keeps the K the queue already has (1 for a new queue); a number applies to all clips.
    annotations_per_clip: int | None = Field(default=None, ge=1, le=100)
    amend_window_s: int = Field(default=900, ge=0, le=7 * 24 * 3600)
    max_ttl_s: int = Field(default=MAX_TTL_SECONDS, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)
    default_ttl_s: int = Field(default=300, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)
    #: Welfare breaks (issue 11): a break of `break_minutes` after this many escalation-flagged
    #: clips, or after `max_continuous_minutes` of work without one; 0 turns a rule off.
    break_after_flagged: int = Field(default=3, ge=0, le=1000)
    break_minutes: int = Field(default=15, ge=0, le=24 * 60)
    max_continuous_minutes: int = Field(default=120, ge=0, le=24 * 60)
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024)
    max_batch_body_bytes: int = Field(default=MAX_BATCH_BODY_BYTES, ge=1024)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.db_path}"
