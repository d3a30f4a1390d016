"""The connectivity owner's rules, with a probe the test controls (no network needed)."""

from __future__ import annotations

from annotator.workbench.connectivity import Connectivity, ConnectivityState, Link


class Probe:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("connection refused")


def test_a_failure_is_checked_before_it_is_called_offline_and_recovery_wakes_everyone() -> None:
    probe = Probe()
    link = Connectivity(probe)
    seen: list[ConnectivityState] = []
    woken: list[str] = []
    link.add_listener(seen.append)
    link.add_waker(lambda: woken.append("prefetch"))
    link.add_waker(lambda: woken.append("sync"))

    link.reported_failure("sync", "connection refused")
    assert link.state.link is Link.RECONNECTING  # one report is a hint, not the truth
    probe.up = True
    link.check()
    assert link.state.link is Link.ONLINE and woken == ["prefetch", "sync"]

    probe.up = False
    link.reported_failure("prefetch", "connection refused")
    link.check()
    assert link.state == ConnectivityState(Link.OFFLINE, "connection refused", link.state.since)
    link.reported_failure("sync", "connection refused")
    assert link.state.link is Link.OFFLINE  # already offline: no flapping through reconnecting
    link.reported_ok("sync")
    assert link.state.online and woken == ["prefetch", "sync"] * 2
    assert [s.link for s in seen] == [
        Link.RECONNECTING, Link.ONLINE, Link.RECONNECTING, Link.OFFLINE, Link.ONLINE
    ]  # fmt: skip


def test_the_heartbeat_notices_a_change_nobody_reported() -> None:
    import time

    probe = Probe()
    link = Connectivity(probe, interval=0.05)
    link.start()
    try:
        probe.up = False
        deadline = time.monotonic() + 2
        while link.state.link is not Link.OFFLINE and time.monotonic() < deadline:
            time.sleep(0.01)
        assert link.state.link is Link.OFFLINE
        probe.up = True
        deadline = time.monotonic() + 2
        while not link.state.online and time.monotonic() < deadline:
            time.sleep(0.01)
        assert link.state.online
    finally:
        link.stop()
