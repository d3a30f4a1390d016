"""A throwaway PostgreSQL 15 cluster for the bench: `start_temp_cluster(base_dir)`.

The test suite's own starter (planned as `tests/fixtures/postgres.py: start_temp_cluster`) is used
when it exists, so the bench and the tests start PostgreSQL the same way; this file's copy is the
fallback until then: `initdb` + `pg_ctl` on a temporary directory and a free loopback port, run as
the `postgres` user when we are root (PostgreSQL refuses to run as root). Durability settings are
PostgreSQL's defaults (fsync on, synchronous_commit on): the figures must include the real fsync.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import free_port

PG_BIN = Path(os.environ.get("ANNOTATOR_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class TempCluster:
    url: str
    stop: Callable[[], None]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL here (binaries missing, initdb failed): the figure is "not run"."""


def start_temp_cluster(base_dir: Path) -> TempCluster:
    try:
        shared = importlib.import_module("tests.fixtures.postgres")
    except ImportError:
        return _start_own(base_dir)
    cluster = shared.start_temp_cluster(base_dir)
    return TempCluster(url=str(cluster.url), stop=cluster.stop)


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and no runuser to become `postgres`")
    return [runuser, "-u", "postgres", "--", *cmd]


def _start_own(base_dir: Path) -> TempCluster:
    if not (PG_BIN / "initdb").exists():
        raise PostgresUnavailable(f"no initdb in {PG_BIN} (apt-get install postgresql-15)")
    data = base_dir / "pgdata"
    data.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(base_dir, "postgres")
        shutil.chown(data, "postgres")
    log = base_dir / "postgres.log"
    port = free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(_as_postgres(list(cmd)), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{Path(cmd[0]).name} failed: {done.stderr.strip()[-500:]}")

    # --no-sync only skips initdb's own final flush of the template files; the server fsyncs.
    run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = (
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        "-c shared_buffers=128MB"
    )
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")

    def stop() -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            check=False,
        )

    return TempCluster(url=f"postgresql://postgres@127.0.0.1:{port}/postgres", stop=stop)


def create_database(cluster_url: str, name: str) -> str:
    """A fresh database in the cluster; its URL."""
    import psycopg

    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster_url.rsplit("/", 1)[0] + f"/{name}"
