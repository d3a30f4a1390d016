"""The supervisors' and admins' request rules (issue 11): escalations with their lifecycle,
audit trail and service levels, the long-poll, and the admin reports. Routes are in
`api.server.supervisor_routes`; storage in `api.server.escalation_store`; the pure decisions in
`api.server.escalation_rules`.

The long-poll polls `EscalationStore.version()` (four counts, well under a millisecond) every
`POLL_S` seconds on both backends, so a change committed by any server process on the same
database is seen within that; the answer is the whole list, built after the version was read
(so a change in between is at worst answered twice, never missed).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from datetime import datetime, timedelta

from api.models import (
    AmendmentRecord,
    Annotation,
    AuditAction,
    AuditEvent,
    EscalationDetail,
    EscalationPage,
    EscalationState,
    EscalationSummary,
    LocaleCounts,
    PeopleList,
    PersonLeases,
    PersonThroughput,
    QueueStatus,
    RevokeResult,
    ServiceLevelSettings,
    Throughput,
)
from api.server import escalation_rules as er
from api.server.errors import Rejection, not_found
from api.server.escalation_store import EscalationStore, EventRow, SourceRow
from api.server.people_admin import PeopleAdmin
from api.server.repository import StoredAudio
from api.server.service import QueueService
from api.server.sql_repo import SqlRepository

#: How often a waiting long-poll looks for news (the 2 s promise has room for load).
POLL_S = 0.25
DEFAULT_THROUGHPUT_HOURS = 12
MAX_THROUGHPUT_HOURS = 7 * 24


def cursor_of(version: tuple[object, ...]) -> str:
    return hashlib.sha256(repr(version).encode()).hexdigest()[:24]


def overdue_marks(items: list[EscalationSummary]) -> tuple[tuple[str, bool, bool], ...]:
    """Which escalations are overdue, and how: part of the cursor, so a deadline passing with
    no commit at all is news to every waiting console."""
    return tuple(
        sorted(
            (e.escalation_id, e.sla.ack_overdue, e.sla.resolve_overdue) for e in items if e.overdue
        )
    )


def next_deadline(items: list[EscalationSummary], now: datetime) -> datetime | None:
    """The earliest deadline not yet passed that would make an escalation overdue."""
    due = [
        when
        for e in items
        if e.state is not EscalationState.RESOLVED
        for when, counts in (
            (e.sla.ack_due_at, e.state is EscalationState.OPEN),
            (e.sla.resolve_due_at, True),
        )
        if counts and when >= now
    ]
    return min(due, default=None)


def hour_start(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


class SupervisionService:
    def __init__(self, queue: QueueService) -> None:
        if not isinstance(queue.repo, SqlRepository):
            raise TypeError("the supervisors' procedure needs one of the SQL backends")
        self.queue = queue
        self.clock = queue.clock
        self.store = EscalationStore(queue.repo, queue.index.escalation_flags)
        self.people_admin = PeopleAdmin(queue.repo)
        self.outcomes = frozenset(o.id for o in queue.taxonomy.outcomes)
        self.levels = ServiceLevelSettings(
            ack_seconds=queue.settings.escalation_ack_s,
            resolve_seconds=queue.settings.escalation_resolve_s,
        )

    # ------------------------------------------------------------------ the list

    def _summary(
        self, source: SourceRow, standing: er.Standing, now: datetime
    ) -> EscalationSummary:
        sla = er.service_level(standing, now, self.levels.ack_seconds, self.levels.resolve_seconds)
        return EscalationSummary(
            escalation_id=source.escalation_id,
            kind=source.kind,
            clip_id=source.clip_id,
            annotation_id=source.annotation_id,
            flags=list(source.flags),
            severity=er.severity(source.kind, source.flags),
            note=source.note,
            transcript=source.transcript,
            intent=source.intent,
            annotator=source.annotator,
            created_at=source.raised_at,
            locale=source.locale,
            duration_s=source.duration_s,
            state=standing.state,
            acknowledged_by=standing.acknowledged_by,
            acknowledged_at=standing.acknowledged_at,
            resolved_by=standing.resolved_by,
            resolved_at=standing.resolved_at,
            outcome=standing.outcome,
            resolution_note=standing.resolution_note,
            sla=sla,
            overdue=sla.ack_overdue or sla.resolve_overdue,
        )

    def summaries(self, now: datetime, since: datetime | None = None) -> list[EscalationSummary]:
        """Every escalation (raised since `since`), overdue first, then severity, then age."""
        transitions = self.store.transitions()
        items = [
            self._summary(s, er.replay(s.raised_at, transitions.get(s.escalation_id, [])), now)
            for s in self.store.sources(since)
        ]
        items.sort(key=lambda e: er.sort_key(e.overdue, e.severity, e.created_at))
        return items

    def page(
        self,
        states: list[EscalationState] | None,
        since: datetime | None,
        limit: int,
        version: tuple[object, ...] | None = None,
    ) -> EscalationPage:
        return self._page(states, since, limit, version)[0]

    def _page(
        self,
        states: list[EscalationState] | None,
        since: datetime | None,
        limit: int,
        version: tuple[object, ...] | None = None,
    ) -> tuple[EscalationPage, datetime | None]:
        """The page, and the next moment time alone will change it (a deadline passing)."""
        if version is None:
            version = self.store.version()
        now = self.clock.now()
        every = self.summaries(now, since)
        wanted = set(states) if states else None
        items = [e for e in every if wanted is None or e.state in wanted]
        page = EscalationPage(
            escalations=items[:limit],
            cursor=cursor_of((version, overdue_marks(every))),
            truncated=len(items) > limit,
            now=now,
            service_levels=self.levels,
        )
        return page, next_deadline(every, now)

    async def wait_page(
        self,
        states: list[EscalationState] | None,
        since: datetime | None,
        limit: int,
        cursor: str | None,
        wait_s: float,
    ) -> EscalationPage:
        """The page at once, or (given the cursor of an earlier page and `wait_s`) as soon as
        anything changed since that page — a commit, or a service-level deadline passing — or
        after `wait_s` when nothing did."""
        deadline = time.monotonic() + wait_s
        version = self.store.version()
        page, due = self._page(states, since, limit, version)
        while cursor is not None and page.cursor == cursor:
            if time.monotonic() >= deadline:
                # Built afresh: its `now` is what a console's countdown runs from.
                return self.page(states, since, limit)
            await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
            latest = self.store.version()
            if latest != version or (due is not None and self.clock.now() > due):
                version = latest
                page, due = self._page(states, since, limit, version)
        return page

    # ------------------------------------------------------------------ one escalation

    @staticmethod
    def _audit(e: EventRow) -> AuditEvent:
        return AuditEvent(
            event_id=e.event_id,
            escalation_id=e.escalation_id,
            action=e.action,
            actor=e.actor,
            at=e.at,
            from_state=e.from_state,
            to_state=e.to_state,
            outcome=e.outcome,
            note=e.note,
        )

    def detail(self, escalation_id: str) -> EscalationDetail:
        source = self.store.source(escalation_id)
        if source is None:
            raise not_found("escalation")
        events = self.store.events(escalation_id)
        numbered = [t for e in events if (t := e.transition())]
        summary = self._summary(source, er.replay(source.raised_at, numbered), self.clock.now())
        annotation: Annotation | None = None
        amendments: list[AmendmentRecord] = []
        if source.annotation_id is not None:
            stored = self.queue.repo.get_annotation(source.annotation_id)
            if stored is not None:
                annotation = self.queue.annotation_model(stored)
            amendments = [
                AmendmentRecord(
                    amended_at=a.amended_at,
                    transcript=str(a.content.get("transcript", "")),
                    intent=str(a.content.get("intent", "")),
                    flags=[str(f) for f in a.content.get("flags", [])],
                    note=a.content.get("note"),
                )
                for a in self.store.amendments(source.annotation_id)
            ]
        return EscalationDetail(
            escalation=summary,
            annotation=annotation,
            amendments=amendments,
            audit=[self._audit(e) for e in events],
        )

    def act(
        self,
        actor: str,
        escalation_id: str,
        action: AuditAction,
        *,
        outcome: str | None = None,
        note: str | None = None,
    ) -> EscalationDetail:
        if action is AuditAction.RESOLVE and outcome not in self.outcomes:
            known = ", ".join(sorted(self.outcomes))
            raise Rejection(
                422,
                "unknown_outcome",
                f"outcome: {outcome!r} is not one of this deployment's outcomes ({known})",
                field="outcome",
            )
        self.store.transition(
            escalation_id, action, actor, self.clock.now(), outcome=outcome, note=note
        )
        return self.detail(escalation_id)

    def audio(self, actor: str, escalation_id: str) -> StoredAudio:
        return self.store.play(escalation_id, actor, self.clock.now())

    # ------------------------------------------------------------------ admin

    def queue_status(self) -> QueueStatus:
        now = self.clock.now()
        counts = self.store.clip_counts(now)
        transitions = self.store.transitions()
        sources = self.store.sources()
        escalated_clips: dict[str, set[str]] = {}
        open_count = 0
        for s in sources:
            escalated_clips.setdefault(s.locale, set()).add(s.clip_id)
            standing = er.replay(s.raised_at, transitions.get(s.escalation_id, []))
            open_count += standing.state is not EscalationState.RESOLVED
        by_locale = [
            LocaleCounts(
                locale=locale,
                pending=pending,
                leased=leased,
                done=done,
                escalated=len(escalated_clips.get(locale, ())),
            )
            for locale, pending, leased, done in counts
        ]
        leases = self.store.live_leases(now)
        return QueueStatus(
            at=now,
            pending=sum(c.pending for c in by_locale),
            leased=sum(c.leased for c in by_locale),
            done=sum(c.done for c in by_locale),
            escalated=sum(c.escalated for c in by_locale),
            open_escalations=open_count,
            by_locale=by_locale,
            leases_per_person=[
                PersonLeases(annotator=name, live_leases=n) for name, n in sorted(leases.items())
            ],
        )

    def people(self) -> PeopleList:
        """Everyone in `people` with their tokens (never a secret or its hash)."""
        now = self.clock.now()
        listed = self.people_admin.people(
            now, self.store.annotation_counts(), self.store.live_leases(now)
        )
        return PeopleList(people=listed)

    def revoke(self, person_id: str, token_id: str | None) -> RevokeResult:
        """Revoke one token of the person, or all their live ones (the `token revoke` path)."""
        now = self.clock.now()
        person, count = self.people_admin.revoke(person_id, token_id, now)
        listed = self.people_admin.people(
            now, self.store.annotation_counts(), self.store.live_leases(now)
        )
        info = next(p for p in listed if p.name == person.name)
        return RevokeResult(revoked=count, person=info)

    def throughput(self, since: datetime | None, hours: int | None) -> Throughput:
        now = self.clock.now()
        span = hours or DEFAULT_THROUGHPUT_HOURS
        start = (
            hour_start(since) if since is not None else hour_start(now) - timedelta(hours=span - 1)
        )
        try:
            starts = [start + timedelta(hours=i) for i in range(span)]
            end = starts[-1] + timedelta(hours=1)
        except OverflowError:
            raise Rejection(
                422, "validation", "since: too far in the future", field="since"
            ) from None
        per: dict[str, Counter[int]] = {}
        for name, at in self.store.annotation_times(start, end):
            per.setdefault(name, Counter())[int((at - start).total_seconds() // 3600)] += 1
        people = [
            PersonThroughput(
                annotator=name,
                clips_per_hour=[counter.get(i, 0) for i in range(span)],
                total=sum(counter.values()),
            )
            for name, counter in sorted(per.items())
        ]
        return Throughput(since=start, hours=starts, people=people)
