"""The welfare contract (issue 11): break policy and state, opt-outs, exposure counts.

Kept out of `api.models` so the welfare routes travel as one piece; the same `_In`/`_Out`
rules apply (unknown request fields refused, unknown response fields ignored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.models import DisplayName, TaxonomyId, _In, _Out

#: What counts towards a person's exposure: clips that anyone flagged with one of these.
EXPOSURE_CATEGORIES: tuple[str, ...] = ("distress", "self_harm", "explicit", "minor")
#: The lease refusal while a break is on: 429 with this reason and a Retry-After header.
ON_BREAK_REASON = "on_break"
MAX_OPT_OUTS = 16


def in_words(seconds: int) -> str:
    """A wait as a person reads it: "in 40 s", "in 15 min" (minutes rounded up)."""
    return f"in {seconds} s" if seconds < 60 else f"in {-(-seconds // 60)} min"


class WelfarePolicy(_Out):
    """The deployment's break rules; 0 turns a rule off."""

    break_after_flagged: int = Field(ge=0, le=1000)
    break_minutes: int = Field(ge=0, le=24 * 60)
    max_continuous_minutes: int = Field(ge=0, le=24 * 60)


class WelfareState(_Out):
    """GET /v1/me/welfare: where this person stands against the policy now."""

    policy: WelfarePolicy
    on_break: bool
    break_ends_at: datetime | None = None
    break_reason: str | None = None
    #: While on a break: seconds until it ends, by the server's clock (the client counts down).
    seconds_left: int = Field(default=0, ge=0, le=24 * 3600)
    flagged_since_break: int = Field(ge=0)
    working_since: datetime | None = None
    opt_outs: list[TaxonomyId] = Field(default_factory=list, max_length=MAX_OPT_OUTS)


class OptOuts(_In):
    """PUT body: the categories (taxonomy flag ids) this person is not served, when K > 1."""

    categories: Annotated[list[TaxonomyId], Field(max_length=MAX_OPT_OUTS)]


class PersonExposure(_Out):
    person: DisplayName
    #: Clips this person annotated or skipped that anyone flagged, per category.
    counts: dict[str, int]
    breaks: int = Field(ge=0)
    on_break: bool
    opt_outs: list[TaxonomyId] = Field(default_factory=list)
    #: The start of the shift counted (None: no work in the window). With no `since` asked for,
    #: each person's own shift: their first activity after a pause of `shift_gap_hours`.
    shift_started_at: datetime | None = None
    #: Working now: the last activity is less than `shift_gap_hours` ago.
    on_shift: bool = False


class ExposureReport(_Out):
    """GET /v1/admin/exposure: the shift (from `since`) per person, for the supervisor console."""

    since: datetime
    until: datetime
    categories: list[str]
    people: list[PersonExposure]
    #: What a shift is here (`annotator serve --shift-gap-hours`); None when `since` was given.
    shift_gap_hours: float | None = None
