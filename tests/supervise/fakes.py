"""Fixed, real-shaped escalations for the console's widget, key and snapshot tests (the end-to-end
tests use the real server: tests/supervise/test_console_e2e.py).

`FakeSupervisorClient` answers the `QueueClient` calls the console makes from a fixed list; a
long-poll with an unchanged cursor waits (as the server does) until the list changes or the wait
ends. Transitions change the list like the server's rules do, and record what was called.
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from annotator.config import load_settings
from annotator.keymap import load_keymap
from annotator.supervise.app import SuperviseApp
from annotator.supervise.services import ConsoleServices
from api.models import (
    AuditAction,
    AuditEvent,
    EscalationDetail,
    EscalationKind,
    EscalationPage,
    EscalationState,
    EscalationSummary,
    LocaleCounts,
    PersonLeases,
    PersonThroughput,
    QueueStatus,
    Role,
    ServiceLevel,
    ServiceLevelSettings,
    Throughput,
)
from api.taxonomy import load_default_taxonomy
from tests.tui.fakes import FrozenPlayer

NOW = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
ACK_S, RESOLVE_S = 15 * 60, 24 * 3600


def summary(
    n: int,
    *,
    flags: tuple[str, ...] = ("distress",),
    minutes_ago: float = 5.0,
    state: EscalationState = EscalationState.OPEN,
    annotator: str = "ann1",
    transcript: str = "please help me he is hitting me",
    note: str = "a woman screams in the background",
) -> EscalationSummary:
    created = NOW - timedelta(minutes=minutes_ago)
    ack_due = created + timedelta(seconds=ACK_S)
    resolve_due = created + timedelta(seconds=RESOLVE_S)
    severity = 0 if "self_harm" in flags else 1 if "distress" in flags else 2
    ack_overdue = state is EscalationState.OPEN and ack_due <= NOW
    return EscalationSummary(
        escalation_id=f"esc{n:04d}",
        kind=EscalationKind.FLAG,
        clip_id=f"clip{n:04d}",
        annotation_id=f"ann{n:04d}",
        flags=list(flags),
        severity=severity,
        note=note,
        transcript=transcript,
        intent="not_device_directed",
        annotator=annotator,
        created_at=created,
        locale="en-US",
        duration_s=4.2,
        state=state,
        acknowledged_by="sup1" if state is not EscalationState.OPEN else None,
        acknowledged_at=created + timedelta(minutes=1)
        if state is not EscalationState.OPEN
        else None,
        sla=ServiceLevel(
            ack_due_at=ack_due,
            resolve_due_at=resolve_due,
            ack_overdue=ack_overdue,
            resolve_overdue=False,
        ),
        overdue=ack_overdue,
    )


def default_rows() -> list[EscalationSummary]:
    return [
        summary(1, flags=("self_harm",), minutes_ago=3,
                transcript="i don't want to be here anymore", note="says it twice, quietly"),
        summary(2, minutes_ago=22, annotator="ann2"),
        summary(3, flags=("distress", "minor"), minutes_ago=9, state=EscalationState.ACKNOWLEDGED,
                annotator="ann3", transcript="mummy come back", note="a child crying"),
    ]  # fmt: skip


class FakeSupervisorClient:
    """Shared by every client the factory makes (the console makes one per request)."""

    def __init__(self, rows: list[EscalationSummary]) -> None:
        self.rows = {r.escalation_id: r for r in rows}
        self.audit: dict[str, list[AuditEvent]] = {k: [] for k in self.rows}
        self.version = 1
        self.calls: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    # -- the factory's side
    def __call__(self, timeout: float = 10.0) -> FakeSupervisorClient:
        return self

    def __enter__(self) -> FakeSupervisorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    # -- the console's calls
    def escalations(
        self,
        *,
        state: Any = None,
        since: Any = None,
        cursor: str | None = None,
        wait: float = 0,
        limit: int | None = None,
    ) -> EscalationPage:
        with self._changed:
            if cursor == str(self.version) and wait:
                self._changed.wait(timeout=min(wait, 0.5))
            states = set(state) if state is not None else set(EscalationState)
            shown = [r for r in self.rows.values() if r.state in states]
            shown.sort(key=lambda r: (not r.overdue, r.severity, r.created_at))
            return EscalationPage(
                escalations=shown,
                cursor=str(self.version),
                now=NOW,
                service_levels=ServiceLevelSettings(ack_seconds=ACK_S, resolve_seconds=RESOLVE_S),
            )

    def add(self, row: EscalationSummary) -> None:
        with self._changed:
            self.rows[row.escalation_id] = row
            self.audit[row.escalation_id] = []
            self.version += 1
            self._changed.notify_all()

    def escalation(self, escalation_id: str) -> EscalationDetail:
        row = self.rows[escalation_id]
        return EscalationDetail(escalation=row, audit=list(self.audit[escalation_id]))

    def _move(
        self, escalation_id: str, action: AuditAction, to: EscalationState, **extra: Any
    ) -> EscalationDetail:
        with self._changed:
            row = self.rows[escalation_id]
            self.calls.append((action.value, escalation_id))
            self.audit[escalation_id].append(
                AuditEvent(
                    event_id=f"ev{len(self.calls)}",
                    escalation_id=escalation_id,
                    action=action,
                    actor="sup1",
                    at=NOW,
                    from_state=row.state,
                    to_state=to,
                    outcome=extra.get("outcome"),
                    note=extra.get("resolution_note"),
                )
            )
            self.rows[escalation_id] = row.model_copy(update={"state": to, **extra})
            self.version += 1
            self._changed.notify_all()
        return self.escalation(escalation_id)

    def acknowledge(self, escalation_id: str, note: str | None = None) -> EscalationDetail:
        return self._move(
            escalation_id, AuditAction.ACK, EscalationState.ACKNOWLEDGED,
            acknowledged_by="sup1", acknowledged_at=NOW,
        )  # fmt: skip

    def resolve(self, escalation_id: str, outcome: str, note: str) -> EscalationDetail:
        return self._move(
            escalation_id, AuditAction.RESOLVE, EscalationState.RESOLVED,
            resolved_by="sup1", resolved_at=NOW, outcome=outcome, resolution_note=note,
        )  # fmt: skip

    def reopen(self, escalation_id: str, note: str | None = None) -> EscalationDetail:
        return self._move(escalation_id, AuditAction.REOPEN, EscalationState.OPEN)

    def escalation_audio(self, escalation_id: str) -> bytes:
        from tests.fixtures.server import wav_bytes

        self.calls.append(("play", escalation_id))
        return wav_bytes(1, seconds=4.2)

    def queue_status(self) -> QueueStatus:
        return QueueStatus(
            at=NOW, pending=412, leased=37, done=1208, escalated=3, open_escalations=2,
            by_locale=[
                LocaleCounts(locale="en-US", pending=300, leased=30, done=1000, escalated=3),
                LocaleCounts(locale="de-DE", pending=112, leased=7, done=208, escalated=0),
            ],
            leases_per_person=[PersonLeases(annotator="ann1", live_leases=12),
                               PersonLeases(annotator="ann2", live_leases=25)],
        )  # fmt: skip

    def throughput(self, since: Any = None, hours: int | None = None) -> Throughput:
        n = hours or 12
        start = NOW.replace(minute=0) - timedelta(hours=n - 1)
        curve = [0, 40, 95, 110, 120, 104, 60, 115, 118, 121, 99, 30]
        return Throughput(
            since=start,
            hours=[start + timedelta(hours=i) for i in range(n)],
            people=[
                PersonThroughput(annotator="ann1", clips_per_hour=(curve * 2)[:n],
                                 total=sum((curve * 2)[:n])),
                PersonThroughput(annotator="ann2", clips_per_hour=[c // 2 for c in (curve * 2)[:n]],
                                 total=sum(c // 2 for c in (curve * 2)[:n])),
            ],
        )  # fmt: skip


def make_console(
    tmp_path: Path, rows: list[EscalationSummary] | None = None
) -> tuple[SuperviseApp, FakeSupervisorClient]:
    client = FakeSupervisorClient(default_rows() if rows is None else rows)
    settings = load_settings(argparse.Namespace(server=None, token=None, config=None))
    services = ConsoleServices(
        settings=settings,
        keymap=load_keymap("default"),
        taxonomy=load_default_taxonomy(),
        client_factory=client,  # type: ignore[arg-type]
        player=FrozenPlayer(),  # type: ignore[arg-type]
        player_reason="audio off: muted",
        clock=lambda: 0.0,
        poll_wait_s=0.5,
        role=Role.ADMIN,
    )
    return SuperviseApp(services), client
