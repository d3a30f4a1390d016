"""The request-level rules the storage layer does not hold: taxonomy checks, TTL caps, request
hashing for idempotency, the batch envelope, the token cache, and shaping stored records into API
models. Every route goes through `QueueService`; nothing in `app.py` touches the repository.

Kept free of HTTP routing so the rules read in one place; `app.py` maps routes onto it. The queue
rules that need the database's rows (fences, lateness, who may amend) are in `api.server.rules`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from api.models import (
    MAX_BATCH_ITEMS,
    Annotation,
    AnnotationIn,
    AnnotationPatch,
    BatchItem,
    BatchItemResult,
    Lease,
    LeaseState,
    Receipt,
    ReleaseReason,
    Stats,
    Taxonomy,
)
from api.server import rules
from api.server.auth_throttle import AuthThrottle
from api.server.claim_group import ClaimGrouper
from api.server.clock import Clock
from api.server.error_handlers import validation_error_body
from api.server.errors import Rejection, not_found
from api.server.export import export_lines
from api.server.group_commit import GroupCommitter
from api.server.in_flight import InFlight
from api.server.intents.model_store import IntentModelStore
from api.server.intents.suggester import Suggester
from api.server.repository import (
    AnnotationContent,
    LeaseGrant,
    Principal,
    Repository,
    StoredAnnotation,
    StoredAudio,
    Submission,
    SubmitResult,
)
from api.server.retention import NOT_DEVICE_DIRECTED, Retention
from api.server.settings import ServerSettings
from api.server.sql_repo import ClaimGate, GateClosed, SqlRepository, ts
from api.server.stats import compute_stats, start_of_day
from api.server.welfare import WelfareService
from api.taxonomy import TaxonomyIndex, load_taxonomy

log = logging.getLogger("annotator.server")

#: A token that authenticated is trusted this long without another database read...
TOKEN_CACHE_SECONDS = 60.0
#: ...unless the token generation (bumped by every `annotator token revoke`, in any process) has
#: changed: it is read at most this often, so a revoked token stops working everywhere within it.
TOKEN_GENERATION_CHECK_SECONDS = 0.5


def lease_model(g: LeaseGrant, suggest: Callable[[str | None], list[str]] | None = None) -> Lease:
    c = g.clip
    heard = c.asr_hint if c.asr_hint is not None or c.asr_words is None else ""
    return Lease.model_validate(
        {
            "lease_id": g.lease_id,
            "fence": g.fence,
            "expires_at": g.expires_at,
            "clip": {
                "clip_id": c.clip_id,
                "duration_s": c.duration_s,
                "sample_rate": c.sample_rate,
                "channels": c.channels,
                "locale": c.locale,
                "sha256": c.sha256,
                "asr_hint": c.asr_hint,
                "asr_words": None
                if c.asr_words is None
                else [{"word": w, "confidence": p} for w, p in c.asr_words],
                "suggested_intents": suggest(heard) if suggest is not None else [],
            },
        }
    )


class QueueService:
    """The request-level rules the storage layer does not hold: taxonomy checks, TTL caps,
    request hashing, and shaping stored records into API models."""

    def __init__(self, settings: ServerSettings, clock: Clock, repo: Repository) -> None:
        self.settings = settings
        self.clock = clock
        self.repo = repo
        self.taxonomy: Taxonomy = load_taxonomy(settings.taxonomy_path)
        self.index = TaxonomyIndex(self.taxonomy)
        self.taxonomy_json = self.taxonomy.model_dump_json().encode()
        self.amend_window = timedelta(seconds=settings.amend_window_s)
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._generation = repo.token_generation()
        self._generation_checked_at = time.monotonic()
        self.auth_throttle = AuthThrottle(
            settings.auth_failure_limit, settings.auth_failure_window_s
        )
        #: The HTTP requests being served (`create_app` counts them): group commit's flush goes
        #: to a thread only when others are waiting on the loop.
        self.in_flight = InFlight()
        self.committer = GroupCommitter(repo, clock, self.in_flight.count)
        self.claims: ClaimGrouper[list[Lease]] | None = (
            ClaimGrouper(repo.shared_writes)
            if isinstance(repo, SqlRepository) and repo.shares_writes
            else None
        )
        self.retention = (
            Retention(repo, clock, settings.retain_audio_days)
            if isinstance(repo, SqlRepository)
            else None
        )
        models = IntentModelStore(repo) if isinstance(repo, SqlRepository) else None
        self.suggester = Suggester(self.taxonomy, models)
        from api.server.quality_service import QualityService

        self.quality = QualityService.attach(self)
        self.welfare: WelfareService | None = None
        if isinstance(repo, SqlRepository):
            flags = {f.id for f in self.taxonomy.flags}
            self.welfare = WelfareService(settings, clock, repo, flags)

    # -- auth

    def _drop_tokens_if_revoked(self, now: float) -> None:
        if now < self._generation_checked_at + TOKEN_GENERATION_CHECK_SECONDS:
            return
        generation = self.repo.token_generation()
        self._generation_checked_at = now
        if generation != self._generation:
            self._generation = generation
            self._tokens.clear()

    def authenticate(self, token: str, source: str | None = None) -> Principal:
        """The token's person, or 401; a `source` address with too many failures is answered
        429 for tokens not already accepted here (`api.server.auth_throttle`)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        self._drop_tokens_if_revoked(now)
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            expires = cached[0].expires_at
            if expires is None or expires > self.clock.now():
                return cached[0]
            del self._tokens[digest]
        where = source or "unknown address"
        wait = self.auth_throttle.retry_after(where)
        if wait is not None:
            raise Rejection(
                429,
                "too_many_failed_logins",
                f"too many failed authentications from your address; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        principal = self.repo.principal_for_token(token, self.clock.now())
        if principal is None:
            count = self.auth_throttle.failed(where)
            # Never the token, not even part of it: the address and the count only.
            log.warning(
                "authentication failed from %s (%d in the last %d s)",
                where,
                count,
                self.settings.auth_failure_window_s,
            )
            raise Rejection(401, "bad_token", "unknown or expired token: ask an admin for one")
        self._tokens[digest] = (principal, now + TOKEN_CACHE_SECONDS)
        return principal

    # -- leases

    def claim(
        self, who: Principal, count: int, ttl_s: int | None, request_key: str | None = None
    ) -> list[Lease]:
        """Lease clips, refused with 429 `on_break` during a welfare break (before the cap's
        409): the break check travels inside the claim's statement (`WelfareService.claim_gate`)
        and the full rules run only when it says a break is on or due. `request_key` (the
        Idempotency-Key header): a retry gets the leases its first attempt was granted, while
        they live (see `Repository.claim`)."""
        ttl, now = self.ttl(ttl_s), self.clock.now()
        gate = self.welfare.claim_gate(who.name, ts(now)) if self.welfare is not None else None
        try:
            grants = self._claim(who, count, ttl, now, gate, request_key)
        except GateClosed:
            assert self.welfare is not None
            self.welfare.refuse_lease_on_break(who)  # 429 on_break + Retry-After
            grants = self._claim(who, count, ttl, now, None, request_key)  # that break is over
        return [lease_model(g, self.suggester.suggest) for g in grants]

    async def claim_grouped(
        self, who: Principal, count: int, ttl_s: int | None, request_key: str | None = None
    ) -> list[Lease]:
        """`claim`, in one transaction with the claims that arrive alongside it where the
        backend shares one (`api.server.claim_group`)."""
        if self.claims is None:
            return self.claim(who, count, ttl_s, request_key)
        return await self.claims.run(functools.partial(self.claim, who, count, ttl_s, request_key))

    def _claim(
        self,
        who: Principal,
        count: int,
        ttl: int,
        now: datetime,
        gate: ClaimGate | None,
        request_key: str | None,
    ) -> list[LeaseGrant]:
        cap: dict[str, Any] = {
            "max_live": self.settings.max_live_leases,
            "max_lifetime_s": self.settings.max_lease_lifetime_s,
            "request_key": request_key,
        }
        if self.quality is not None:  # gold clips dealt in at their rate
            return self.quality.claim(who.name, count, ttl, gate=gate, **cap)
        if gate is not None:
            assert isinstance(self.repo, SqlRepository)  # the welfare service needs one
            return self.repo.claim(who.name, count, ttl, now, gate=gate, **cap)
        return self.repo.claim(who.name, count, ttl, now, **cap)

    def renew(self, who: Principal, lease_id: str, ttl_s: int | None) -> LeaseState:
        s = self.repo.renew(
            lease_id,
            who.name,
            self.ttl(ttl_s),
            self.clock.now(),
            max_lifetime_s=self.settings.max_lease_lifetime_s,
        )
        return LeaseState(
            lease_id=s.lease_id, fence=s.fence, expires_at=s.expires_at, released=s.released
        )

    def release(
        self, who: Principal, lease_id: str, reason: ReleaseReason, detail: str | None
    ) -> None:
        self.repo.release(lease_id, who.name, reason, detail, self.clock.now())

    def audio(self, who: Principal, lease_id: str) -> StoredAudio:
        return self.repo.lease_audio(lease_id, who.name, self.clock.now())

    # -- reports

    def stats(self, who: Principal) -> Stats:
        now = self.clock.now()
        today = self.repo.activity(who.name, start_of_day(now))
        return compute_stats(today, self.repo.count_annotations(who.name), now)

    def export_lines(self) -> Iterator[bytes]:
        """The NDJSON export; a sync generator (the route iterates it on a worker thread)."""
        return export_lines(self.repo)

    # -- annotations

    def ttl(self, requested: int | None) -> int:
        return min(requested or self.settings.default_ttl_s, self.settings.max_ttl_s)

    def check(
        self, transcript: str, intent: str, flags: list[str], note: str | None
    ) -> AnnotationContent:
        problems = self.index.check_annotation(
            transcript=transcript, intent=intent, flags=flags, note=note
        )
        if problems:
            field, reason, message = problems[0]
            raise Rejection(422, reason, f"{field}: {message}", field=field)
        return AnnotationContent(
            transcript=transcript,
            intent=intent,
            flags=tuple(flags),
            note=note,
            escalated=bool(self.index.escalation_flags.intersection(flags)),
        )

    def submission(self, key: str, body: AnnotationIn) -> Submission:
        """A submission checked against the taxonomy, with its canonical body and hash."""
        content = self.check(body.transcript, body.intent, body.flags, body.note)
        canonical = orjson.dumps(
            body.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS
        )
        return Submission(
            lease_id=body.lease_id,
            fence=body.fence,
            idempotency_key=key,
            request_hash=hashlib.sha256(canonical).hexdigest(),
            body_json=canonical.decode(),
            content=content,
            active_seconds=body.timings.active_seconds if body.timings else None,
            taxonomy_version=self.taxonomy.version,
        )

    def receipt(self, result: SubmitResult) -> tuple[int, Receipt]:
        a = result.annotation
        if a.content.intent == NOT_DEVICE_DIRECTED and not result.replayed:
            self._retain(a.clip_id)
        receipt = Receipt(
            annotation_id=a.annotation_id,
            clip_id=a.clip_id,
            status=a.status,
            amend_until=a.created_at + self.amend_window,
        )
        return (200 if result.replayed else 201), receipt

    def _retain(self, clip_id: str) -> None:
        """An accidental activation's audio goes as soon as its annotations are in. The
        submission is already durable: a failure here is left to the retention sweep."""
        if self.retention is None:
            return
        try:
            self.retention.after_submit(clip_id)
        except Exception as e:  # noqa: BLE001 - the sweep retries; the submit must not fail
            log.warning("retention after a submission failed: %s", type(e).__name__)

    def submit(self, who: Principal, key: str, body: AnnotationIn) -> tuple[int, Receipt]:
        """One submission, its own durable transaction."""
        submission = self.submission(key, body)
        return self.receipt(self.repo.submit(who.name, submission, self.clock.now()))

    async def submit_grouped(
        self, who: Principal, key: str, body: AnnotationIn
    ) -> tuple[int, Receipt]:
        """One submission, committed durably together with any that arrive alongside it
        (see `api.server.group_commit`); returns only once its commit is durable."""
        submission = self.submission(key, body)
        return self.receipt(await self.committer.submit(who.name, submission))

    def annotation_model(self, a: StoredAnnotation) -> Annotation:
        return Annotation(
            annotation_id=a.annotation_id,
            clip_id=a.clip_id,
            transcript=a.content.transcript,
            intent=a.content.intent,
            flags=list(a.content.flags),
            note=a.content.note,
            status=a.status,
            created_at=a.created_at,
            amended_at=a.amended_at,
            amend_until=a.created_at + self.amend_window,
        )

    def amend(self, who: Principal, annotation_id: str, patch: AnnotationPatch) -> Annotation:
        current = self.repo.get_annotation(annotation_id)
        if current is None:
            raise not_found("annotation")
        # Checked again, with the window, inside the repository's transaction.
        rules.require_author(current.annotator, who.name)
        c = current.content
        given = patch.model_fields_set
        content = self.check(
            patch.transcript if patch.transcript is not None else c.transcript,
            patch.intent if patch.intent is not None else c.intent,
            patch.flags if patch.flags is not None else list(c.flags),
            patch.note if "note" in given else c.note,
        )
        updated = self.repo.amend(
            annotation_id,
            who.name,
            content,
            self.clock.now(),
            self.settings.amend_window_s,
            escalation_flags=self.index.escalation_flags,
        )
        return self.annotation_model(updated)

    def submit_batch(self, who: Principal, raws: list[Any]) -> list[BatchItemResult]:
        """Each item of a batch checked on its own; the valid ones stored by ONE durable
        `submit_many` (a savepoint each), so a bad item still fails alone with its own status
        while the batch costs one fsync instead of one per item."""
        results: list[BatchItemResult | None] = []
        queued: list[tuple[int, str, Submission]] = []
        for index, raw in enumerate(raws):
            key = raw.get("idempotency_key") if isinstance(raw, dict) else None
            shown_key = key if isinstance(key, str) else ""
            try:
                item = BatchItem.model_validate(raw)
            except ValidationError as e:
                error = validation_error_body(e, prefix=f"items.{index}")
                results.append(
                    BatchItemResult(idempotency_key=shown_key[:128], status_code=422, error=error)
                )
                continue
            try:
                submission = self.submission(item.idempotency_key, item.annotation)
            except Rejection as r:
                results.append(
                    BatchItemResult(
                        idempotency_key=item.idempotency_key,
                        status_code=r.status_code,
                        error=r.body(),
                    )
                )
                continue
            queued.append((index, item.idempotency_key, submission))
            results.append(None)
        stored = self.repo.submit_many(
            [(who.name, submission) for _, _, submission in queued], self.clock.now()
        )
        for (index, key, _), outcome in zip(queued, stored, strict=True):
            if isinstance(outcome, Rejection):
                results[index] = BatchItemResult(
                    idempotency_key=key, status_code=outcome.status_code, error=outcome.body()
                )
            else:
                status, receipt = self.receipt(outcome)
                results[index] = BatchItemResult(
                    idempotency_key=key, status_code=status, receipt=receipt
                )
        return [r for r in results if r is not None]


def batch_items(raw: bytes) -> list[Any]:
    """The batch envelope, checked by hand so one bad item fails alone instead of the batch."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        message = f"the body is not valid JSON: {e}"
        raise Rejection(422, "malformed_json", message, field="body") from e
    if not isinstance(data, dict):
        message = "the body must be an object {items: [...]}"
        raise Rejection(422, "validation", message, field="body")
    extra = sorted(set(data) - {"items"})
    if extra:
        raise Rejection(422, "unknown_field", f"{extra[0]}: unknown field", field=extra[0])
    items = data.get("items")
    if not isinstance(items, list):
        raise Rejection(422, "validation", "items: must be a list", field="items")
    if not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise Rejection(
            422, "validation", f"items: send between 1 and {MAX_BATCH_ITEMS} items", field="items"
        )
    return items
