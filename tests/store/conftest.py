"""Store tests: every test gets its own ANNOTATOR_HOME, so nothing touches the real user's files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from annotator.store import LocalStore
from api.models import AnnotationIn, Clip, Lease


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANNOTATOR_KEYRING", raising=False)
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> Iterator[LocalStore]:
    s = LocalStore.open()
    yield s
    s.close()


def make_lease(n: int, *, ttl_s: float = 3600, fence: int = 1) -> Lease:
    return Lease(
        lease_id=f"lease{n:04d}",
        fence=fence,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        clip=Clip(
            clip_id=f"clip{n:04d}",
            duration_s=2.5,
            sample_rate=16000,
            channels=1,
            locale="en-US",
            sha256="0" * 64,
        ),
    )


def make_annotation(lease: Lease, text: str = "set an alarm for seven") -> AnnotationIn:
    return AnnotationIn(
        lease_id=lease.lease_id, fence=lease.fence, transcript=text, intent="alarm_set", flags=[]
    )
