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
#: Sized for the TUI's prefetch (a handful) plus an offline checkout of a shift's worth.
DEFAULT_MAX_LIVE_LEASES = 40
#: A working day: a checkout's 8 h lease renewed for the rest of a long shift, never for ever.
DEFAULT_MAX_LEASE_LIFETIME_S = 12 * 3600


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
    #: The share of leased clips that are gold (issue 12): each clip independently.
    gold_rate: float = Field(default=0.05, ge=0, le=1)
    #: Annotations of a clip whose pair WER exceeds this go to review (as do differing intents
    #: or flags).
    review_max_wer: float = Field(default=0.2, ge=0, le=10)
    #: Live leases one person may hold at once (prefetch + an offline checkout): one person
    #: cannot lease the whole queue. `serve --max-live-leases`.
    max_live_leases: int = Field(default=DEFAULT_MAX_LIVE_LEASES, ge=1, le=10_000)
    #: A lease's whole life, renewals included: renewing never takes it past this many seconds
    #: after it was granted. `serve --max-lease-lifetime`.
    max_lease_lifetime_s: int = Field(
        default=DEFAULT_MAX_LEASE_LIFETIME_S, ge=MIN_TTL_SECONDS, le=7 * 24 * 3600
    )
    #: Failed authentications one source address may make per `auth_failure_window_s` before
    #: its unknown tokens are answered 429 + Retry-After (`api.server.auth_throttle`).
    auth_failure_limit: int = Field(default=10, ge=1, le=10_000_000)
    auth_failure_window_s: int = Field(default=60, ge=1, le=24 * 3600)
    #: Retention (`api.server.retention`): audio older than this many days is deleted; None keeps
    #: it (audio of clips annotated `not_device_directed` is deleted either way).
    #: `serve --retain-audio-days`.
    retain_audio_days: float | None = Field(default=None, gt=0, le=36_500)
    #: How often the retention sweep runs in a serving process.
    retention_sweep_s: float = Field(default=300.0, gt=0, le=24 * 3600)
    #: Welfare breaks (issue 11): a break of `break_minutes` after this many escalation-flagged
    #: clips, or after `max_continuous_minutes` of work without one; 0 turns a rule off.
    break_after_flagged: int = Field(default=3, ge=0, le=1000)
    break_minutes: int = Field(default=15, ge=0, le=24 * 60)
    max_continuous_minutes: int = Field(default=120, ge=0, le=24 * 60)
    #: A person's shift, for exposure counts, is their current work period: it starts at their
    #: first activity after a pause of at least this long (`api.server.welfare.shift_start`).
    shift_gap_hours: float = Field(default=4.0, ge=0.25, le=24.0)
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024)
    max_batch_body_bytes: int = Field(default=MAX_BATCH_BODY_BYTES, ge=1024)
    #: Service levels of the supervisors' procedure (issue 11): an escalation should be
    #: acknowledged within `escalation_ack_s` and resolved within `escalation_resolve_s`.
    escalation_ack_s: int = Field(default=15 * 60, ge=1, le=30 * 24 * 3600)
    escalation_resolve_s: int = Field(default=24 * 3600, ge=1, le=365 * 24 * 3600)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.db_path}"
