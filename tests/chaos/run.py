"""The chaos run: annotators work through a fault-injecting proxy, get SIGKILLed, then get audited.

    python -m tests.chaos.run --minutes 3 [--clients 3] [--seed S] [--keep] [--postgres]

A real `annotator serve` (K = 1) with tiny distinct clips queued; a `ChaosProxy` in front of it;
N headless annotator processes (`tests.chaos.client_driver`) working through the proxy. For the
length of the run, network faults of every kind fire at random, client processes are SIGKILLed at
random moments and restarted (a restarted client reopens its store, adopts its leases and resends
its outbox), and the server is restarted a few times (alternately SIGTERM and SIGKILL). With
`--postgres` the queue lives in a throwaway PostgreSQL server, which is itself restarted mid-run
(alternately a fast shutdown and an immediate one, i.e. a crash) while the queue server keeps
running: requests meanwhile get 503 and are retried, pooled connections are replaced. Then the
faults stop, every client flushes (SIGTERM to the live ones, a flush-only process for the ones
that were dead), and the result is audited against the server's database and its API:

- lost: a submission a client promised (stdout, after `submit` returned) that its store does not
  hold, or one its store holds that the server does not (a 409 conflict is not lost: it is kept
  in the client's conflicts list by design, and the server must show the clip done by another);
- duplicated: a clip with more than K = 1 annotations, a lease or an idempotency key stored twice,
  or a server annotation no client store knows of;
- escalations: every distress submission is in GET /v1/escalations, with its note;
- keypresses: no UI-thread call could wait on the network — no request ran on a client's UI
  thread or while its store lock was held (the driver's transport checks every request) — and
  each keypress's time is measured and split into queueing for the store lock, own CPU, and
  blocked (fsync); `--strict-keypress` also fails on any over 50 ms for those local reasons.

Everything is seeded (the seed is printed); the exit code is non-zero on any violation.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from shutil import rmtree
from typing import Any

import httpx

from annotator.store.models import OutboxState
from api.models import AnnotationIn, Role
from tests.chaos.proxy import PER_REQUEST, ChaosProxy, FaultKind, NetworkFaults
from tests.fixtures.postgres import TempCluster, start_temp_cluster
from tests.fixtures.server import REPO_ROOT, LiveServer, ingest_into, open_repo, wav_bytes

KEYPRESS_BUDGET_MS = 50.0
#: Clips each client could annotate per second at full speed (3–7 words, 20–80 ms apart), with
#: headroom: the queue must not run dry, or the run measures an empty queue.
CLIPS_PER_CLIENT_S = 4
ESCALATIONS_API_LIMIT = 1000
PROCESS_EXIT_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class ChaosConfig:
    seconds: float
    clients: int = 3
    seed: int = 0
    #: Seconds between SIGKILLs of a random client, and how long it stays dead.
    kill_every: tuple[float, float] = (3.0, 10.0)
    dead_for: tuple[float, float] = (0.2, 2.0)
    #: Share of kills after which the client stays dead past its leases' lifetime (a laptop shut
    #: mid-shift): its leases expire, others take the clips, and its outbox comes back late —
    #: accepted as late, or a 409 conflict when someone completed the clip meanwhile.
    long_dead_rate: float = 0.0
    #: Share of kills timed to land just after a submit returned (mid-sync).
    kill_after_submit: float = 0.4
    lease_ttl: int = 60
    fault_every: tuple[float, float] = (0.5, 2.5)
    server_restarts: int = 0  # 0: one per ~45 s of run, at least one
    server_down_for: tuple[float, float] = (0.5, 3.0)
    #: The queue in PostgreSQL instead of SQLite, and how often that database restarts
    #: (0: one per ~45 s of run, at least one).
    postgres: bool = False
    db_restarts: int = 0
    db_down_for: tuple[float, float] = (0.5, 2.0)
    distress: float = 0.1
    think_s: tuple[float, float] = (0.02, 0.08)
    flush_timeout: float = 60.0
    #: The 50 ms budget is about the network: a keypress can only wait on it if a request runs on
    #: the UI thread or while the store's lock is held, and any such request fails the run.
    #: Keypresses over 50 ms for local reasons (an fsync, a starved CPU) are counted and shown;
    #: True makes them fail the run too.
    strict_keypress: bool = False


@dataclass
class Incarnation:
    proc: subprocess.Popen[bytes]
    reader: threading.Thread
    killed: bool = False
    flush_only: bool = False


@dataclass
class ChaosClient:
    name: str
    token: str
    home: Path
    #: SUBMITTED promises: key -> (clip_id, lease_id, escalated).
    promised: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    keypress_ms: list[float] = field(default_factory=list)
    max_lock_wait_ms: float = 0.0
    slow: list[str] = field(default_factory=list)
    #: Keypresses that queued over budget behind the sync thread (the store's lock).
    queued: list[str] = field(default_factory=list)
    #: Keys whose amendment returned (durable): the server must end with the amended text.
    amended: set[str] = field(default_factory=set)
    #: Set at each SUBMITTED line, so a kill can land right after a submit.
    submitted_evt: threading.Event = field(default_factory=threading.Event)
    #: Words of the newest draft promised on disk, by lease, and drafts that came back shorter.
    draft_words: dict[str, int] = field(default_factory=dict)
    lost_drafts: list[str] = field(default_factory=list)
    drafts_resumed: int = 0
    #: Longest hold of the store's lock over 25 ms, by "thread:LocalStore method".
    lock_holds: dict[str, float] = field(default_factory=dict)
    #: Requests made on the UI thread or while holding the store's lock (must stay empty).
    netguard: list[str] = field(default_factory=list)
    flushed: list[tuple[int, int, int]] = field(default_factory=list)
    incarnations: list[Incarnation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def db_path(self) -> Path:
        return self.home / "data" / "local.db"

    @property
    def current(self) -> Incarnation | None:
        return self.incarnations[-1] if self.incarnations else None

    def running(self) -> bool:
        inc = self.current
        return inc is not None and inc.proc.poll() is None

    def on_line(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        try:
            if parts[0] in ("SHOWN", "DRAFT", "SUBMITTED", "AMENDED"):
                ms, wait, cpu = float(parts[-3]), float(parts[-2]), float(parts[-1])
                with self.lock:
                    self.keypress_ms.append(ms)
                    self.max_lock_wait_ms = max(self.max_lock_wait_ms, wait)
                    if ms > KEYPRESS_BUDGET_MS:
                        self.slow.append(
                            f"{self.name} {parts[0]} {ms:.1f} ms: {wait:.1f} ms queued for the"
                            f" store lock, {cpu:.1f} ms own CPU, {ms - wait - cpu:.1f} ms blocked"
                            " (fsync, scheduler)"
                        )
                        if wait > KEYPRESS_BUDGET_MS:
                            self.queued.append(self.slow[-1])
                if parts[0] == "DRAFT":
                    with self.lock:
                        self.draft_words[parts[1]] = int(parts[2])
                elif parts[0] == "SHOWN":
                    lease, resumed = parts[1], int(parts[3])
                    with self.lock:
                        before = self.draft_words.get(lease, 0)
                        self.drafts_resumed += resumed > 0
                        if resumed < before:
                            self.lost_drafts.append(
                                f"{self.name}: lease {lease} reopened with {resumed} words of a"
                                f" draft that had {before} on disk"
                            )
                elif parts[0] == "SUBMITTED":
                    key, clip, lease, escalated = parts[1:5]
                    with self.lock:
                        self.promised[key] = (clip, lease, escalated == "1")
                    self.submitted_evt.set()
                elif parts[0] == "AMENDED":
                    with self.lock:
                        self.amended.add(parts[1])
            elif parts[0] == "LOCKHOLD":
                ms, where = float(parts[1]), f"{parts[2]}:{parts[3]}"
                with self.lock:
                    self.lock_holds[where] = max(self.lock_holds.get(where, 0.0), ms)
            elif parts[0] == "NETGUARD":
                with self.lock:
                    self.netguard.append(f"{self.name}: request {' '.join(parts[1:])}")
            elif parts[0] == "FLUSHED":
                pending, conflicts, rejected = (int(x) for x in parts[1:4])
                with self.lock:
                    self.flushed.append((pending, conflicts, rejected))
        except (ValueError, IndexError):
            pass  # a line cut short by SIGKILL promises nothing


@dataclass
class ChaosReport:
    seed: int
    seconds: float
    clients: int
    submitted: int = 0
    promised: int = 0
    on_server: int = 0
    escalations: int = 0
    conflicts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    kills_after_submit: int = 0
    long_deaths: int = 0
    late: int = 0
    server_restarts: int = 0
    db_restarts: int = 0
    lost: int = 0
    duplicated: int = 0
    amendments: int = 0
    #: Amendments promised but missing locally, or server content that is not the client's last.
    lost_amendments: int = 0
    #: Drafts reopened after a SIGKILL with fewer words than were promised on disk.
    lost_drafts: int = 0
    drafts_resumed: int = 0
    keypresses: int = 0
    p50_keypress_ms: float = 0.0
    p99_keypress_ms: float = 0.0
    max_keypress_ms: float = 0.0
    max_lock_wait_ms: float = 0.0
    slow_keypresses: int = 0
    #: Of those, queued over budget behind the sync thread for the store's lock.
    queued_keypresses: int = 0
    slow: list[str] = field(default_factory=list)
    #: Requests made on a client's UI thread or under its store lock (the ways to wait on them).
    network_waits: int = 0
    lock_holds: dict[str, float] = field(default_factory=dict)
    proxy: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    run_dir: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        lines = [
            f"chaos run: seed {self.seed}, {self.seconds:.0f} s, {self.clients} clients",
            f"  annotations submitted   {self.submitted} (promised on stdout: {self.promised};"
            f" on the server: {self.on_server})",
            f"  escalations             {self.escalations}",
            f"  accepted late           {self.late}",
            f"  conflicts (kept local)  {self.conflicts}",
            f"  faults injected         {sum(self.faults.values())}: {faults}",
            f"  client kills (SIGKILL)  {self.kills} ({self.kills_after_submit} right after a"
            f" submit, {self.long_deaths} dead past the lease TTL)",
            f"  server restarts         {self.server_restarts}",
            f"  database restarts       {self.db_restarts}",
            f"  lost                    {self.lost}",
            f"  duplicated              {self.duplicated}",
            f"  drafts reopened short   {self.lost_drafts} (of {self.drafts_resumed} reopened)",
            f"  amendments lost         {self.lost_amendments} (of {self.amendments})",
            f"  keypresses              {self.keypresses}: p50 {self.p50_keypress_ms:.1f} ms,"
            f" p99 {self.p99_keypress_ms:.1f} ms, max {self.max_keypress_ms:.1f} ms"
            f" (max queued for the store lock {self.max_lock_wait_ms:.1f} ms)",
            f"  keypresses over {KEYPRESS_BUDGET_MS:.0f} ms  {self.slow_keypresses}"
            f" (of which queued > {KEYPRESS_BUDGET_MS:.0f} ms behind the sync thread's disk work:"
            f" {self.queued_keypresses}); shown below",
            f"  requests on UI thread / under store lock: {self.network_waits}",
            "  store lock held > 25 ms "
            + (", ".join(f"{k} {v:.0f} ms" for k, v in sorted(self.lock_holds.items())) or "never"),
            f"  proxy                   {json.dumps(self.proxy, sort_keys=True)}",
            f"  run dir                 {self.run_dir}",
        ]
        lines += [f"  - {s}" for s in self.slow[:10]]
        if self.violations:
            lines.append(f"FAILED: {len(self.violations)} violation(s)")
            lines += [f"  - {v}" for v in self.violations[:40]]
            if len(self.violations) > 40:
                lines.append(f"  … and {len(self.violations) - 40} more")
        else:
            lines.append(
                "OK: nothing lost, nothing duplicated, no escalation lost, no keypress waited on"
                " the network"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Submitted:
    """One history row of a client's store."""

    key: str
    clip_id: str
    lease_id: str
    state: str
    annotation_id: str | None
    annotation: AnnotationIn


def read_store(path: Path) -> tuple[dict[str, Submitted], set[str], Counter[str]]:
    """A client's history, conflict keys and outbox states, read-only.

    Not through `LocalStore.open`: an auditor must never migrate, repair or move aside the file
    it audits (a store written by a newer schema would be set aside as unusable)."""
    from annotator.store.fields import FieldCipher, body_aad

    # Bodies are sealed under the client's cache key (home/config/cache.key), read as is: the
    # auditor must not create, rotate or repair anything either.
    key_file = path.parent.parent / "config" / "cache.key"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        if not key_file.exists():
            # A client killed between creating local.db and its first key (LocalStore opens the
            # file, then loads or makes the key) sealed nothing: it may hold no history either.
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "history" not in tables:  # killed before its schema, too
                return {}, set(), Counter()
            rows = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
            if rows:
                raise AssertionError(f"{path}: {rows} history rows but no cache key beside it")
        fields = FieldCipher(
            base64.b64decode(key_file.read_bytes().strip()) if key_file.exists() else bytes(32)
        )
        history = {
            str(k): Submitted(
                str(k),
                str(clip),
                str(lease),
                str(state),
                aid,
                AnnotationIn.model_validate_json(fields.open(body, body_aad(str(k)))),
            )
            for k, clip, lease, state, aid, body in conn.execute(
                "SELECT key, clip_id, lease_id, state, annotation_id, body_json FROM history"
            )
        }
        conflicts = {str(r[0]) for r in conn.execute("SELECT key FROM conflicts")}
        # An amendment of a submission that ended in conflict is refused locally as
        # `target_not_stored`: the conflict itself is what is kept and shown, so it is not counted.
        states = conn.execute(
            "SELECT state, COUNT(*) FROM outbox WHERE NOT (state = 'rejected'"
            " AND reason = 'target_not_stored') GROUP BY state"
        )
        outbox: Counter[str] = Counter({str(state): int(n) for state, n in states})
        return history, conflicts, outbox
    finally:
        conn.close()


class ChaosRun:
    def __init__(self, config: ChaosConfig, run_dir: Path) -> None:
        self.cfg = config
        self.dir = run_dir
        self.rng = random.Random(config.seed)
        self.cluster: TempCluster | None = start_temp_cluster() if config.postgres else None
        self.server = LiveServer(
            root=run_dir / "server",
            extra_args=("--annotations-per-clip", "1"),
            db_url=self.cluster.new_database() if self.cluster else "",
        )
        self.proxy: ChaosProxy | None = None
        self.faults: NetworkFaults | None = None
        self.clients: list[ChaosClient] = []
        self.kills = 0
        self.kills_after_submit = 0
        self.long_deaths = 0
        self.restarts: Counter[str] = Counter()
        self.violations: list[str] = []
        #: Violations seen while running (crashes, failed flushes); the audit starts from these.
        self._run_violations: list[str] = []
        self._log = open(run_dir / "run.log", "a")  # noqa: SIM115 - closed in run()

    def log(self, message: str) -> None:
        self._log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        self._log.flush()

    # ------------------------------------------------------------------ set-up

    def _start_server(self) -> None:
        server = self.server
        server.root.mkdir(parents=True, exist_ok=True)
        server.admin_token = server.new_token("admin", Role.ADMIN)
        server.supervisor_token = server.new_token("super", Role.SUPERVISOR)
        clips = int(self.cfg.clients * self.cfg.seconds * CLIPS_PER_CLIENT_S) + 50
        wavs = self.dir / "wavs"
        wavs.mkdir()
        paths = []
        for i in range(clips):
            path = wavs / f"clip_{i:05d}.wav"
            path.write_bytes(wav_bytes(i, seconds=0.1))
            paths.append(path)
        ingest_into(server.db, server.data_dir, paths)
        tokens = server.new_tokens([f"chaos{i + 1}" for i in range(self.cfg.clients)])
        for i, token in enumerate(tokens):
            home = self.dir / f"chaos{i + 1}"
            home.mkdir()
            self.clients.append(ChaosClient(f"chaos{i + 1}", token, home))
        server.start()
        self.log(f"server on {server.url}, {clips} clips")

    def _spawn(self, client: ChaosClient, *, flush_only: bool = False) -> Incarnation:
        assert self.proxy is not None
        n = len(client.incarnations)
        cmd = [
            sys.executable,
            "-m",
            "tests.chaos.client_driver",
            "--server",
            self.proxy.url,
            # One argument with its value: a token may begin with "-" (urlsafe base64), which
            # argparse would otherwise read as an option and refuse.
            f"--token={client.token}",
            "--seed",
            str(self.cfg.seed * 1_000_003 + self.clients.index(client) * 1000 + n),
            "--distress",
            str(self.cfg.distress),
            "--think-s",
            *(str(x) for x in self.cfg.think_s),
            "--flush-timeout",
            str(self.cfg.flush_timeout),
            "--ttl",
            str(self.cfg.lease_ttl),
        ]
        if flush_only:
            cmd.append("--flush-only")
        env = {**os.environ, "ANNOTATOR_HOME": str(client.home), "PYTHONUNBUFFERED": "1"}
        with open(client.home / "driver.log", "ab") as err:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                client.on_line(raw.decode(errors="replace"))

        reader = threading.Thread(target=read, name=f"read-{client.name}", daemon=True)
        reader.start()
        inc = Incarnation(proc, reader, flush_only=flush_only)
        client.incarnations.append(inc)
        self.log(f"{client.name} started pid {proc.pid}{' (flush only)' if flush_only else ''}")
        return inc

    # ------------------------------------------------------------------ chaos

    def _kill_one(self) -> ChaosClient | None:
        alive = [c for c in self.clients if c.running()]
        if not alive:
            return None
        client = self.rng.choice(alive)
        if self.rng.random() < self.cfg.kill_after_submit:
            # The riskiest instant: the submit just returned and the sync thread is sending.
            client.submitted_evt.clear()
            if client.submitted_evt.wait(3.0):
                self.kills_after_submit += 1
        inc = client.current
        assert inc is not None
        if inc.proc.poll() is not None:
            return None
        inc.killed = True
        inc.proc.send_signal(signal.SIGKILL)
        inc.proc.wait(timeout=10)
        # Its last lines are read before a successor's, so draft promises stay in order.
        inc.reader.join(timeout=10)
        self.kills += 1
        self.log(f"SIGKILL {client.name} pid {inc.proc.pid}")
        return client

    def _restart_server(self) -> None:
        crash = self.restarts["crash"] <= self.restarts["graceful"] and self.rng.random() < 0.7
        if crash and self.server.proc is not None:
            self.server.proc.kill()  # kill -9: nothing flushed, nothing closed
            self.server.proc.wait(timeout=10)
            self.server.proc = None
        else:
            self.server.stop()
        kind = "crash" if crash else "graceful"
        self.restarts[kind] += 1
        time.sleep(self.rng.uniform(*self.cfg.server_down_for))
        self.server.start()
        self.log(f"server restarted ({kind})")

    def _restart_database(self) -> None:
        assert self.cluster is not None
        crash = self.restarts["db_crash"] <= self.restarts["db_restart"]
        mode = "immediate" if crash else "fast"
        self.cluster.stop_server(mode=mode)
        kind = "db_crash" if crash else "db_restart"
        self.restarts[kind] += 1
        time.sleep(self.rng.uniform(*self.cfg.db_down_for))
        self.cluster.start()
        self.log(f"database restarted ({mode} shutdown)")

    def _check_unexpected_exits(self) -> None:
        for client in self.clients:
            inc = client.current
            if inc is None or inc.killed or inc.proc.poll() is None:
                continue
            self.violations.append(
                f"{client.name} pid {inc.proc.pid} exited by itself with code {inc.proc.returncode}"
                f" (see {client.home / 'driver.log'})"
            )
            inc.killed = True  # reported once; it is restarted below like a killed one
            inc.reader.join(timeout=10)
            self._spawn(client)

    def chaos(self) -> None:
        cfg, rng = self.cfg, self.rng
        assert self.faults is not None
        start = time.monotonic()
        end = start + cfg.seconds
        restarts = cfg.server_restarts or max(1, round(cfg.seconds / 45))
        restart_at = sorted(
            start + cfg.seconds * (i + 1) / (restarts + 1) + rng.uniform(-3, 3)
            for i in range(restarts)
        )
        db_restarts = (cfg.db_restarts or max(1, round(cfg.seconds / 45))) if cfg.postgres else 0
        # Between the server's restarts, so each outage is its own.
        db_restart_at = sorted(
            start + cfg.seconds * (i + 0.5) / (db_restarts + 0.5) for i in range(db_restarts)
        )
        next_fault = start + 0.5
        next_kill = start + rng.uniform(*cfg.kill_every)
        revive: list[tuple[float, ChaosClient]] = []
        while (now := time.monotonic()) < end:
            if now >= next_fault:
                next_fault = now + self.faults.step()
            if now >= next_kill:
                killed = self._kill_one()
                if killed is not None:
                    dead = rng.uniform(*cfg.dead_for)
                    if rng.random() < cfg.long_dead_rate:
                        dead = cfg.lease_ttl + rng.uniform(2.0, 10.0)
                        self.long_deaths += 1
                    revive.append((now + dead, killed))
                next_kill = now + rng.uniform(*cfg.kill_every)
            for item in [r for r in revive if r[0] <= now]:
                revive.remove(item)
                self._spawn(item[1])
            if restart_at and now >= restart_at[0]:
                restart_at.pop(0)
                self._restart_server()
            if db_restart_at and now >= db_restart_at[0]:
                db_restart_at.pop(0)
                self._restart_database()
            self._check_unexpected_exits()
            upcoming = [
                next_fault,
                next_kill,
                end,
                *(t for t, _ in revive),
                *restart_at[:1],
                *db_restart_at[:1],
            ]
            time.sleep(max(0.0, min(0.05, min(upcoming) - time.monotonic())))

    def wind_down(self) -> None:
        """Faults off; every client flushes: SIGTERM to live ones, flush-only for dead ones."""
        assert self.faults is not None
        self.faults.clear()
        waiting: list[tuple[ChaosClient, Incarnation]] = []
        for client in self.clients:
            inc = client.current
            if inc is not None and inc.proc.poll() is None:
                inc.proc.send_signal(signal.SIGTERM)
            else:
                inc = self._spawn(client, flush_only=True)
            waiting.append((client, inc))
        deadline = time.monotonic() + PROCESS_EXIT_TIMEOUT_S
        for i, (client, inc) in enumerate(waiting):
            if not inc.flush_only:
                try:
                    rc = inc.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    rc = 0  # judged below
                if rc == -signal.SIGTERM:
                    # Still importing when the shift ended (no handler yet): the default action
                    # ended it, its outbox is on disk; a flush-only run sends it.
                    waiting[i] = (client, self._spawn(client, flush_only=True))
        for client, inc in waiting:
            try:
                rc = inc.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                inc.proc.kill()
                inc.proc.wait(timeout=10)
                self.violations.append(f"{client.name} did not finish its final flush in time")
                continue
            inc.reader.join(timeout=10)
            if rc != 0:
                self.violations.append(
                    f"{client.name}'s final flush exited {rc} (see {client.home / 'driver.log'})"
                )
        self._run_violations = list(self.violations)

    # ------------------------------------------------------------------ audit

    def _server_rows(self) -> list[dict[str, Any]]:
        repo = open_repo(self.server.db, self.server.data_dir)
        try:
            with repo._read() as conn:
                cursor = repo._x(
                    conn,
                    "SELECT annotation_id, clip_id, lease_id, annotator, idempotency_key,"
                    " escalated, note, flags, status, transcript, intent FROM annotations",
                )
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            repo.close()

    def _audit(self, report: ChaosReport) -> None:
        v = self.violations
        rows = self._server_rows()
        report.on_server = len(rows)
        report.late = sum(r["status"] == "late" for r in rows)
        by_key = {(r["annotator"], r["idempotency_key"]): r for r in rows}
        by_clip: Counter[str] = Counter(r["clip_id"] for r in rows)

        # Duplicates: K = 1, one annotation per lease, one per key.
        for clip_id, n in by_clip.items():
            if n > 1:
                report.duplicated += n - 1
                v.append(f"clip {clip_id} completed {n} times (K = 1)")
        for (who, lease), n in Counter((r["annotator"], r["lease_id"]) for r in rows).items():
            if n > 1:
                report.duplicated += n - 1
                v.append(f"lease {lease} of {who} stored {n} times")
        for (who, key), n in Counter((r["annotator"], r["idempotency_key"]) for r in rows).items():
            if n > 1:
                report.duplicated += n - 1
                v.append(f"key {key} of {who} stored {n} times")

        # The API must agree with the database.
        with httpx.Client(base_url=self.server.url, timeout=30.0) as http:
            auth = {"Authorization": f"Bearer {self.server.admin_token}"}
            export = [ln for ln in http.get("/v1/export", headers=auth).text.splitlines() if ln]
            if len(export) != len(rows):
                v.append(f"export has {len(export)} annotations, the database {len(rows)}")
            auth = {"Authorization": f"Bearer {self.server.supervisor_token}"}
            got = http.get(
                "/v1/escalations", headers=auth, params={"limit": ESCALATIONS_API_LIMIT}
            ).json()["escalations"]
        escalated_api = {e["annotation_id"]: e for e in got}
        api_complete = len(got) < ESCALATIONS_API_LIMIT

        times = sorted(ms for c in self.clients for ms in c.keypress_ms)
        if times:
            report.p50_keypress_ms = times[len(times) // 2]
            report.p99_keypress_ms = times[min(len(times) - 1, int(len(times) * 0.99))]
            report.max_keypress_ms = times[-1]
        known: set[tuple[str, str]] = set()
        for client in self.clients:
            report.promised += len(client.promised)
            report.keypresses += len(client.keypress_ms)
            report.max_lock_wait_ms = max(report.max_lock_wait_ms, client.max_lock_wait_ms)
            report.slow_keypresses += len(client.slow)
            report.slow.extend(client.slow)
            report.queued_keypresses += len(client.queued)
            if self.cfg.strict_keypress:
                v.extend(f"slow keypress: {s}" for s in client.slow[:10])
            report.amendments += len(client.amended)
            report.lost_drafts += len(client.lost_drafts)
            report.drafts_resumed += client.drafts_resumed
            v.extend(client.lost_drafts[:10])
            for where, ms in client.lock_holds.items():
                report.lock_holds[where] = max(report.lock_holds.get(where, 0.0), ms)
            report.network_waits += len(client.netguard)
            v.extend(client.netguard[:10])
            history, conflict_keys, counts = read_store(client.db_path)
            report.submitted += len(history)
            if counts["pending"] or counts["rejected"]:
                v.append(
                    f"{client.name}: {counts['pending']} still pending and {counts['rejected']}"
                    " rejected after the final flush"
                )
            for key in client.promised:
                if key not in history:
                    report.lost += 1
                    v.append(f"{client.name}: promised submission {key} is not in its store")
            for key, h in history.items():
                known.add((client.name, key))
                row = by_key.get((client.name, key))
                if h.state == OutboxState.CONFLICT:
                    report.conflicts += 1
                    if row is not None:
                        v.append(f"{client.name}: {key} is a local conflict but on the server")
                    if key not in conflict_keys:
                        report.lost += 1
                        v.append(f"{client.name}: conflict {key} missing from the conflicts list")
                    if by_clip.get(h.clip_id, 0) == 0:
                        v.append(f"{client.name}: 409 for clip {h.clip_id} nobody completed")
                    continue
                if row is None:
                    report.lost += 1
                    v.append(f"{client.name}: submission {key} ({h.state}) is not on the server")
                    continue
                if key in client.amended and not h.annotation.transcript.endswith(" amended"):
                    report.lost_amendments += 1
                    v.append(f"{client.name}: amendment of {key} is not in its store")
                if (row["transcript"], row["intent"]) != (
                    h.annotation.transcript,
                    h.annotation.intent,
                ):
                    report.lost_amendments += 1
                    v.append(
                        f"{client.name}: the server holds {row['transcript']!r} for {key},"
                        f" the client's last word is {h.annotation.transcript!r}"
                    )
                if h.clip_id != row["clip_id"] or h.lease_id != row["lease_id"]:
                    v.append(f"{client.name}: {key} stored for another clip or lease")
                if h.state == OutboxState.SENT and h.annotation_id != row["annotation_id"]:
                    v.append(f"{client.name}: receipt of {key} names another annotation")
                if "distress" in h.annotation.flags:
                    report.escalations += 1
                    listed = escalated_api.get(row["annotation_id"])
                    if not row["escalated"] or (api_complete and listed is None):
                        v.append(f"{client.name}: escalation {key} is not on the escalation list")
                    elif listed is not None and listed["note"] != h.annotation.note:
                        v.append(f"{client.name}: escalation {key} lost its note")
        for r in rows:
            if (r["annotator"], r["idempotency_key"]) not in known:
                report.duplicated += 1
                v.append(
                    f"server holds {r['annotation_id']} by {r['annotator']}"
                    " that no client store recorded"
                )

    # ------------------------------------------------------------------ the whole run

    def start(self) -> None:
        self._start_server()
        self.proxy = ChaosProxy(self.server.port, seed=self.cfg.seed)
        self.proxy.start()
        self.faults = NetworkFaults(self.proxy, self.rng, interval=self.cfg.fault_every)
        for client in self.clients:
            self._spawn(client)

    def audit(self) -> ChaosReport:
        """Audit the server (which must be up) against every client's store and promises."""
        report = ChaosReport(
            self.cfg.seed, self.cfg.seconds, self.cfg.clients, run_dir=str(self.dir)
        )
        self.violations = list(self._run_violations)
        self._audit(report)
        proxy_counts = self.proxy.counts() if self.proxy is not None else {}
        opened = self.faults.opened if self.faults is not None else Counter()
        report.faults = {str(k): n for k, n in opened.items() if k not in PER_REQUEST}
        report.faults.update({str(k): proxy_counts.get(k, 0) for k in PER_REQUEST})
        report.faults["server_restart"] = self.restarts["graceful"]
        report.faults["server_crash"] = self.restarts["crash"]
        report.proxy = {k: n for k, n in proxy_counts.items() if k not in set(FaultKind)}
        report.kills = self.kills
        report.long_deaths = self.long_deaths
        report.kills_after_submit = self.kills_after_submit
        report.server_restarts = self.restarts["graceful"] + self.restarts["crash"]
        report.db_restarts = self.restarts["db_restart"] + self.restarts["db_crash"]
        report.violations = list(self.violations)
        return report

    def close(self) -> None:
        for client in self.clients:
            for inc in client.incarnations:
                if inc.proc.poll() is None:
                    inc.proc.kill()
                    inc.proc.wait(timeout=10)
        if self.proxy is not None:
            self.proxy.close()
        self.server.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self._log.close()

    def run(self) -> ChaosReport:
        """Start, chaos, wind down, audit; everything stopped afterwards, whatever happened."""
        try:
            self.start()
            self.chaos()
            self.wind_down()
            return self.audit()
        finally:
            self.close()


def run_chaos(
    config: ChaosConfig, run_dir: Path | None = None, *, keep: bool = False
) -> ChaosReport:
    """Run and audit; the run directory is removed on success unless `keep` (or given)."""
    owned = run_dir is None
    path = Path(tempfile.mkdtemp(prefix="annotator-chaos-")) if run_dir is None else run_dir
    path.mkdir(parents=True, exist_ok=True)
    report = ChaosRun(config, path).run()
    if report.ok and owned and not keep:
        rmtree(path, ignore_errors=True)
        report.run_dir = f"{path} (removed)"
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    p.add_argument("--keep", action="store_true", help="keep the run directory on success")
    p.add_argument("--ttl", type=int, default=30, help="lease lifetime the clients ask for (s)")
    p.add_argument(
        "--long-dead-rate",
        type=float,
        default=0.1,
        help="share of kills after which a client stays dead past its leases' lifetime",
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="keep the queue in a throwaway PostgreSQL server and restart it mid-run",
    )
    p.add_argument(
        "--strict-keypress",
        action="store_true",
        help="fail on any keypress over 50 ms, even when the time went to the local disk or CPU"
        " (by default only a keypress that could have waited on the network fails the run)",
    )
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"chaos: seed {seed}, {args.minutes:g} min, {args.clients} clients, {backend}", flush=True
    )
    config = ChaosConfig(
        seconds=args.minutes * 60,
        clients=args.clients,
        seed=seed,
        lease_ttl=args.ttl,
        long_dead_rate=args.long_dead_rate,
        strict_keypress=args.strict_keypress,
        postgres=args.postgres,
    )
    report = run_chaos(config, keep=args.keep)
    print(report.render(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
