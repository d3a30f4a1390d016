"""Numbers for issue 4 (run by hand until bench/ adopts it):

    .venv/bin/python -m tests.store.bench_sync [--n 10000] [--single 500]

1. Sync of N queued annotations to a real loopback `annotator serve`, batches of 500.
2. The same per annotation (one POST each) on a subset, for comparison.
3. Draft save latency (`LocalStore.save_draft`, synchronous=FULL): p50/p99/max over 2,000 saves.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from annotator.store import Draft, LocalStore
from annotator.sync import SyncEngine
from tests.fixtures.server import start_live_server
from tests.store.sync_support import annotation_for, client_factory, export, lease_many


def tiny_wavs(directory: Path, n: int) -> list[Path]:
    directory.mkdir(parents=True)
    out = []
    for i in range(n):
        buf = io.BytesIO()
        samples = (np.arange(800) % 200).astype(np.int16)
        samples[:2] = (i % 30000, i // 30000)  # distinct bytes, so ingest does not dedupe
        sf.write(buf, samples, 16000, format="WAV")
        p = directory / f"b{i:05d}.wav"
        p.write_bytes(buf.getvalue())
        out.append(p)
    return out


def queue(store: LocalStore, leases: list) -> float:
    t = time.perf_counter()
    for le in leases:
        store.submit(annotation_for(le), clip_id=le.clip.clip_id)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--single", type=int, default=500)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    os.environ["ANNOTATOR_HOME"] = str(root / "home")
    server = start_live_server(root / "server")
    try:
        t = time.perf_counter()
        server.ingest(tiny_wavs(root / "wavs", a.n + a.single))
        print(f"setup: ingested {a.n + a.single} clips in {time.perf_counter() - t:.1f} s")
        leases = lease_many(server.url, server.annotator_token, a.n + a.single, ttl=3600)
        factory = client_factory(server.url, server.annotator_token)

        with LocalStore.open(root / "batch.db") as store:
            took = queue(store, leases[: a.n])
            print(
                f"queue {a.n} submits (one durable transaction each): {took:.1f} s "
                f"({took / a.n * 1e3:.2f} ms each)"
            )
            engine = SyncEngine(store, factory, batch_size=500)
            t = time.perf_counter()
            s = engine.flush(600)
            took = time.perf_counter() - t
            assert s.sent == a.n and s.pending == 0, s
            print(
                f"sync {a.n} in batches of 500: {took:.2f} s ({s.requests} requests, "
                f"{a.n / took:.0f}/s)"
            )

        with LocalStore.open(root / "single.db") as store:
            queue(store, leases[a.n :])
            engine = SyncEngine(store, factory, batch_size=1)
            t = time.perf_counter()
            s = engine.flush(600)
            took = time.perf_counter() - t
            assert s.sent == a.single, s
            print(
                f"sync {a.single} one POST each: {took:.2f} s ({a.single / took:.0f}/s; "
                f"{a.n} would take ~{a.n / (a.single / took):.0f} s)"
            )
        assert len(export(server.url, server.admin_token)) == a.n + a.single

        with LocalStore.open(root / "drafts.db") as store:
            text = ""
            lat = []
            for i in range(2000):
                text += "x" if i % 7 else " "
                t = time.perf_counter()
                store.save_draft(Draft("lease1", "clip1", text[-2000:], cursor=(0, i)))
                lat.append(time.perf_counter() - t)
            lat.sort()
            print(
                f"draft save: p50 {statistics.median(lat) * 1e3:.2f} ms, "
                f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms, max {lat[-1] * 1e3:.2f} ms"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
