"""A stand-in annotator for the crash tests: types drafts, submits, syncs; killed at random.

    python -m tests.store.crash_driver [--server URL --token T]

ANNOTATOR_HOME must point at the test's directory. Every line on stdout is a promise the test
checks after SIGKILL: "DRAFT <lease> <words>" is printed only after `save_draft` returned (so
that many words must be on disk), "SUBMITTED <key> <clip> <lease>" only after `submit` returned
(so the outbox row and history row must exist). With a server, leases come from it and a
SyncEngine sends the outbox in its thread, so kills also land mid-request.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from annotator.store import Draft, LocalStore
from annotator.sync import Backoff, SyncEngine
from api.client import QueueClient
from api.models import AnnotationIn, Clip, Lease

WORDS = ("turn", "on", "the", "kitchen", "lights", "please", "at", "seven")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fake_lease() -> Lease:
    n = uuid.uuid4().hex[:12]
    return Lease(
        lease_id=f"L{n}",
        fence=1,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        clip=Clip(
            clip_id=f"C{n}",
            duration_s=1.0,
            sample_rate=16000,
            channels=1,
            locale="en-US",
            sha256="0" * 64,
        ),
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--server")
    p.add_argument("--token")
    args = p.parse_args()
    store = LocalStore.open()
    client: QueueClient | None = None
    engine: SyncEngine | None = None
    if args.server:
        client = QueueClient(args.server, args.token)

        def factory() -> QueueClient:
            return QueueClient(args.server, args.token, timeout=5.0)

        engine = SyncEngine(store, factory, batch_size=50, backoff=Backoff(0.05, 0.5, 2, 0.05))
        engine.start()
        engine.wake()
    say("READY")
    while True:
        lease = None
        current = store.current_lease_id()
        if current is not None:
            lease = next(le for le in store.live_leases() if le.lease_id == current)
        elif client is not None:
            lease = client.lease(1, 600).leases[0]
        else:
            lease = fake_lease()
        store.remember_lease(lease)
        store.set_current(lease.lease_id)
        draft = store.load_draft(lease.lease_id)
        words = draft.transcript.split() if draft is not None else []
        if draft is not None:
            say(f"RESUMED {lease.lease_id} {len(words)}")
        while len(words) < 4:
            words.append(random.choice(WORDS))
            text = " ".join(words)
            store.save_draft(Draft(lease.lease_id, lease.clip.clip_id, text, cursor=(0, len(text))))
            say(f"DRAFT {lease.lease_id} {len(words)}")
            time.sleep(random.uniform(0, 0.02))
        annotation = AnnotationIn(
            lease_id=lease.lease_id,
            fence=lease.fence,
            transcript=" ".join(words),
            intent="iot_hue_lighton",
        )
        item = store.submit(annotation, clip_id=lease.clip.clip_id)
        say(f"SUBMITTED {item.key} {lease.clip.clip_id} {lease.lease_id}")
        if engine is not None:
            engine.wake()


if __name__ == "__main__":
    sys.exit(main())
