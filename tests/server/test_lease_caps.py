"""Issue 10 finding 2: one person cannot lease the whole queue, nor hold a lease for ever.

The server caps the live leases one person holds (`serve --max-live-leases`) and a lease's whole
life across renewals (`--max-lease-lifetime`); `annotator checkout` says which cap stopped it and
how many clips it got. Real servers on loopback, both backends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from api.client import Conflict, Gone, QueueClient, new_idempotency_key
from api.models import ReleaseReason
from tests.fixtures.server import ClockedServer, LiveServer, run_annotator
from tests.server.helpers import annotation


def test_one_person_holds_at_most_the_cap_and_gets_room_back_as_leases_end(
    make_clocked_server: Callable[..., ClockedServer], test_wavs
) -> None:
    server = make_clocked_server(max_live_leases=5)
    server.ingest(test_wavs(12))
    alice = QueueClient(server.url, server.token("alice"))
    bob = QueueClient(server.url, server.token("bob"))
    first = alice.lease(count=3).leases
    assert len(first) == 3
    assert len(alice.lease(count=50).leases) == 2  # only up to the cap
    with pytest.raises(Conflict) as e:
        alice.lease(count=1)
    assert e.value.reason == "lease_cap"
    assert "5" in e.value.error.message and "live leases" in e.value.error.message
    # The cap is per person: bob still gets his share of the rest.
    assert len(bob.lease(count=50).leases) == 5
    # Submitting, releasing and expiry each give room back.
    alice.submit(annotation(first[0]), new_idempotency_key())
    alice.release(first[1].lease_id, ReleaseReason.UNUSED)
    assert len(alice.lease(count=5).leases) == 2
    with pytest.raises(Conflict):
        alice.lease()
    server.clock.advance(301)  # every lease above had the default 300 s: all expired
    assert len(alice.lease(count=50).leases) == 5


def test_the_cap_counts_live_leases_only(
    make_clocked_server: Callable[..., ClockedServer], test_wavs
) -> None:
    server = make_clocked_server(max_live_leases=2)
    server.ingest(test_wavs(6))
    alice = QueueClient(server.url, server.token("alice"))
    assert len(alice.lease(count=2, ttl_seconds=60).leases) == 2
    with pytest.raises(Conflict):
        alice.lease()
    server.clock.advance(61)
    assert len(alice.lease(count=2).leases) == 2


def test_renewals_never_take_a_lease_past_its_lifetime(
    make_clocked_server: Callable[..., ClockedServer], test_wavs
) -> None:
    server = make_clocked_server(max_lease_lifetime_s=1000)
    server.ingest(test_wavs(1))
    alice = QueueClient(server.url, server.token("alice"))
    lease = alice.lease(ttl_seconds=600).leases[0]
    granted = server.clock.now()
    server.clock.advance(500)
    renewed = alice.renew(lease.lease_id, ttl_seconds=600)
    assert (renewed.expires_at - granted).total_seconds() == pytest.approx(1000)
    server.clock.advance(499)
    again = alice.renew(lease.lease_id, ttl_seconds=600)
    assert (again.expires_at - granted).total_seconds() == pytest.approx(1000)
    server.clock.advance(2)
    with pytest.raises(Gone):
        alice.renew(lease.lease_id)
    # A ttl longer than the lifetime is cut to it at the grant too.
    server.ingest(test_wavs(2)[1:])
    long = alice.lease(ttl_seconds=8 * 3600).leases[0]
    assert (long.expires_at - server.clock.now()).total_seconds() == pytest.approx(1000)


def test_checkout_names_the_cap_and_how_many_it_got(
    make_live_server: Callable[..., LiveServer], test_wavs, tmp_path: Path
) -> None:
    server = make_live_server("--max-live-leases", "4")
    server.ingest(test_wavs(10))
    env = {"ANNOTATOR_SERVER": server.url, "ANNOTATOR_TOKEN": server.annotator_token}
    done = run_annotator("checkout", "--count", "7", home=tmp_path / "home", env=env)
    assert done.returncode == 1, done.stderr
    assert "checked out 4 of the 7 clips asked for" in done.stdout
    assert "this server's limit is 4" in " ".join(done.stderr.split())
    again = run_annotator("checkout", "--count", "1", home=tmp_path / "home", env=env)
    assert again.returncode == 1
    assert "checked out 0 of the 1 clips asked for" in again.stdout
    assert "Traceback" not in again.stderr


def test_serve_refuses_a_nonsense_cap(tmp_path: Path) -> None:
    done = run_annotator(
        "serve", "--db", f"sqlite:///{tmp_path / 'q.db'}", "--max-live-leases", "0",
        home=tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 2
    assert "--max-live-leases" in done.stderr
