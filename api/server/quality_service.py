"""Quality's request-level rules (issue 12): dealing gold clips into claims, the review queue, a
reviewer's final, the report. Routes (`api.server.quality_routes`) call this; this calls
`api.server.quality_store` and the pure `api.server.quality_rules`.

Gold dealing: each clip of a claim is gold with probability `settings.gold_rate` (independently,
from the system's random source: no position or rhythm gives gold away), when the person has a
gold clip left to do; gold clips take random places in the claim's list.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from api.quality_models import Final, FinalIn, ReviewAnnotation, ReviewItem, ReviewList
from api.server.errors import Rejection
from api.server.quality_rules import Expected, Report, Thresholds
from api.server.quality_store import QualityStore, ReviewCase
from api.server.repository import LeaseGrant
from api.server.sql_repo import ClaimGate, SqlRepository

if TYPE_CHECKING:
    from api.server.repository import Principal
    from api.server.service import QueueService

_RANDOM = random.SystemRandom()


def gold_slots(count: int, rate: float, draw: random.Random = _RANDOM) -> int:
    return sum(1 for _ in range(count) if draw.random() < rate)


def interleave(
    normal: list[LeaseGrant], gold: list[LeaseGrant], draw: random.Random = _RANDOM
) -> list[LeaseGrant]:
    out = list(normal)
    for g in gold:
        out.insert(draw.randint(0, len(out)), g)
    return out


def review_item(case: ReviewCase) -> ReviewItem:
    return ReviewItem(
        clip_id=case.clip_id,
        locale=case.locale,
        duration_s=case.duration_s,
        reasons=case.reasons,
        annotations=[
            ReviewAnnotation(
                annotation_id=x.annotation_id,
                annotator=x.annotator,
                transcript=x.transcript,
                intent=x.intent,
                flags=sorted(x.flags),
                note=case.notes.get(x.annotation_id),
            )
            for x in case.labels
        ],
    )


class QualityService:
    def __init__(self, queue: QueueService, store: QualityStore) -> None:
        self.queue = queue
        self.store = store
        self.limits = Thresholds(max_pair_wer=queue.settings.review_max_wer)

    @classmethod
    def attach(cls, queue: QueueService) -> QualityService | None:
        """The quality service over the queue's repository (None for a non-SQL repository)."""
        if not isinstance(queue.repo, SqlRepository):
            return None
        return cls(queue, QualityStore(queue.repo))

    def claim(
        self,
        who: str,
        count: int,
        ttl_s: int,
        *,
        max_live: int | None = None,
        max_lifetime_s: int | None = None,
        request_key: str | None = None,
        gate: ClaimGate | None = None,
    ) -> list[LeaseGrant]:
        """Ordinary clips first, under the person's live-lease cap (which counts every lease,
        gold ones too), then gold into the slots the cap left, then ordinary clips again for any
        gold slot no gold clip filled: a gold lease never takes a person past the cap by more than
        the gold share of one request, and a request is never short because gold ran out.
        `gate` (a welfare break check) goes with the first ordinary claim, which is made even
        for 0 clips when there is one: a closed gate raises `GateClosed` before anything."""
        now = self.queue.clock.now()
        cap: dict[str, Any] = {
            "max_live": max_live,
            "max_lifetime_s": max_lifetime_s,
            "request_key": request_key,
        }
        slots = gold_slots(count, self.queue.settings.gold_rate)
        if slots and not self.store._any_gold():
            # No gold to deal: one claim of `count` grants exactly what the ordinary claim and
            # its top-up below would (the cap applies to the sum either way), in one statement.
            slots = 0
        # Called even for 0 ordinary clips when there is a cap (at the cap it refuses: 409), a
        # gate, or a key (a retry is answered there, gold leases included, before anything is
        # dealt).
        normal = (
            self.store.repo.claim(who, count - slots, ttl_s, now, gate=gate, **cap)
            if count > slots or max_live is not None or gate is not None or request_key is not None
            else []
        )
        if normal and normal[0].replayed:
            return normal
        if len(normal) < count - slots:
            return normal  # the cap or an empty queue stopped the ordinary claim: no gold either
        gold = (
            self.store.claim_gold(who, slots, ttl_s, now, request_key=request_key) if slots else []
        )
        if (short := slots - len(gold)) > 0:
            try:
                normal += self.queue.repo.claim(who, short, ttl_s, now, **cap, replay=False)
            except Rejection as e:  # the first part reached the cap: grant what it got
                if e.reason != "lease_cap" or not (normal or gold):
                    raise
        return interleave(normal, gold)

    # -- review

    def reviews(self, limit: int) -> ReviewList:
        self.store.settle(self.queue.clock.now(), self.limits)
        return ReviewList(items=[review_item(c) for c in self.store.review_cases(limit)])

    def review(self, clip_id: str) -> ReviewItem:
        from api.server.errors import not_found

        cases = self.store.review_cases(1, clip_id)
        if not cases:
            raise not_found("review")
        return review_item(cases[0])

    def audio(self, clip_id: str) -> tuple[bytes, str]:
        return self.store.review_audio(clip_id)

    def decide(self, who: Principal, clip_id: str, body: FinalIn) -> Final:
        content = self.queue.check(body.transcript, body.intent, body.flags, body.note)
        now = self.queue.clock.now()
        expected = Expected(content.transcript, content.intent, frozenset(content.flags))
        sources = self.store.decide(clip_id, who.name, expected, content.note, now)
        return Final(
            clip_id=clip_id,
            transcript=content.transcript,
            intent=content.intent,
            flags=sorted(content.flags),
            decided_by=who.name,
            from_annotations=sources,
            decided_at=now,
        )

    # -- report

    def report(self) -> Report:
        return quality_report(
            self.store,
            [f.id for f in self.queue.taxonomy.flags],
            self.limits,
            self.queue.clock.now().timestamp(),
        )


def quality_report(
    store: QualityStore, flag_names: list[str], limits: Thresholds, now: float | None = None
) -> Report:
    """The report from the stored per-clip figures (`api.server.quality_figures`; it equals
    `quality_rules.build_report` over every annotation)."""
    from api.server.quality_figures import QualityFigures

    return QualityFigures(store).report(flag_names, limits, now)
