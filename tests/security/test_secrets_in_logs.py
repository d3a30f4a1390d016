"""No token and no transcript in any log, and no token in any process's argv.

A full session runs against a real `annotator serve` (its stderr log is a file): the offline
client commands (`annotator checkout`, `annotator sync` as subprocesses with their own
ANNOTATOR_HOME, the token in the environment), then the client library for lease, audio, submit,
batch, amend, an escalation, the supervisor's list, the admin export and `annotator export`, and
error paths (unknown and malformed tokens, validation errors carrying the transcript, malformed
JSON, an idempotency mismatch, an oversize body). Then every log, every subprocess's output and
every non-database file under the server's root and the client's home is searched for each token
and each distinctive transcript. Tokens must not be in any file at all, databases included (they
are stored hashed); transcripts belong in the databases and the export, nowhere else.

The subprocess server runs at DEBUG (ANNOTATOR_SERVER_LOG_LEVEL=debug: its own and uvicorn's
loggers); a second test runs the same app in-process with every logger at DEBUG and inspects the
records.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.client import ApiError, QueueClient, RequestRejected, Unauthorized
from api.models import AnnotationIn, AnnotationPatch, BatchItem, Role
from api.server.commands import LOG_LEVEL_ENV
from tests.fixtures.server import ClockedServer, LiveServer, annotator_command, write_wavs
from tests.security.support import key

SECRET_TRANSCRIPT = "zebra-marmalade-7731 turn off the hallway lights"
SECRET_AMENDED = "quokka-lantern-5519 turn off the hallway light"
SECRET_NOTE = "ocelot-pamphlet-2286 someone shouting for help"
SECRET_BATCH = "narwhal-teacup-9043 what's the weather"
SECRET_OFFLINE = "wombat-chandelier-6620 play jazz"
SECRET_REJECTED = "axolotl-bagpipe-3317 [zebratag] set a timer"
BAD_TOKEN = "pangolin-token-8812-" + "x" * 24
#: Marker strings that identify each secret wherever a fragment of it lands.
TRANSCRIPT_MARKERS = [
    "zebra-marmalade-7731",
    "quokka-lantern-5519",
    "ocelot-pamphlet-2286",
    "narwhal-teacup-9043",
    "wombat-chandelier-6620",
    "axolotl-bagpipe-3317",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
DB_SUFFIXES = ("-wal", "-shm", "-journal")


def _is_database(path: Path) -> bool:
    if path.name.endswith(DB_SUFFIXES):
        return True
    with path.open("rb") as f:
        return f.read(16) == SQLITE_MAGIC


def _files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _argv_of(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class Watch:
    """Runs `annotator` subprocesses, recording their output and sampling their argv (and their
    children's) from /proc while they run."""

    def __init__(self) -> None:
        self.argvs: list[list[str]] = []
        self.outputs: list[tuple[str, bytes]] = []

    def sample(self, pid: int) -> None:
        for p in {pid, *_descendants(pid)}:
            argv = _argv_of(p)
            if argv:
                self.argvs.append(argv)

    def run(
        self, args: list[str], env: dict[str, str], what: str
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [*annotator_command(), *args]
        self.argvs.append(argv)
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            self.sample(proc.pid)
            time.sleep(0.02)
        out, err = proc.communicate(timeout=60)
        self.outputs.append((f"{what} stdout", out))
        self.outputs.append((f"{what} stderr", err))
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _client_env(home: Path, server: LiveServer, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_")}
    return {
        **env,
        "ANNOTATOR_HOME": str(home),
        "ANNOTATOR_SERVER": server.url,
        "ANNOTATOR_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def live_server(
    make_live_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> LiveServer:
    """`annotator serve` logging at DEBUG: the most it can be made to log."""
    monkeypatch.setenv(LOG_LEVEL_ENV, "debug")
    server = make_live_server()
    monkeypatch.delenv(LOG_LEVEL_ENV)  # only the server; not the client commands
    return server


def _expect_rejected(call: Any) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        call()
    return info.value


# End to end and slow; it breaks a clip's audio FILE to provoke a logged crash (SQLite's store).
@pytest.mark.one_backend
def test_no_secret_in_any_log_or_argv(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = live_server
    server.ingest(write_wavs(tmp_path / "wavs", 14))
    watch = Watch()
    watch.sample(server.proc.pid if server.proc else 0)

    # A token made the way an admin makes one: its stdout is the token, its stderr must not be.
    made = watch.run(
        [
            "token",
            "create",
            "Offline Olga",
            "--role",
            "annotator",
            "--db",
            server.db,
            "--data",
            str(server.data_dir),
        ],
        {**os.environ, "ANNOTATOR_HOME": str(tmp_path / "admin-home")},
        "token create",
    )
    assert made.returncode == 0, made.stderr
    offline_token = made.stdout.decode().strip().splitlines()[-1]
    watch.outputs = [(w, b) for w, b in watch.outputs if w != "token create stdout"]
    tokens = [
        server.admin_token,
        server.annotator_token,
        server.supervisor_token,
        offline_token,
        BAD_TOKEN,
    ]

    # ---- the offline client: checkout, annotate into the local outbox, sync
    home = tmp_path / "client-home"
    env = _client_env(home, server, offline_token)
    r = watch.run(["checkout", "--count", "3"], env, "checkout")
    assert r.returncode == 0, r.stderr.decode()
    monkeypatch.setenv("ANNOTATOR_HOME", str(home))
    from annotator.store.db import LocalStore

    with LocalStore.open() as store:
        leases = store.live_leases()
        assert len(leases) == 3
        store.submit(
            AnnotationIn(
                lease_id=leases[0].lease_id,
                fence=leases[0].fence,
                transcript=SECRET_OFFLINE,
                intent="play_music",
            ),
            clip_id=leases[0].clip.clip_id,
        )
        store.submit(
            AnnotationIn(
                lease_id=leases[1].lease_id,
                fence=leases[1].fence,
                transcript=SECRET_REJECTED,  # an unknown tag: the server rejects it (422)
                intent="alarm_set",
            ),
            clip_id=leases[1].clip.clip_id,
        )
    r = watch.run(["sync"], env, "sync")
    assert r.returncode in (0, 1), r.stderr.decode()
    watch.run(["sync", "--status"], env, "sync --status")
    bad_env = {**env, "ANNOTATOR_TOKEN": BAD_TOKEN}
    r = watch.run(["checkout", "--count", "1"], bad_env, "checkout with a bad token")
    assert r.returncode != 0

    # ---- the client library: a full online session and its error paths
    with QueueClient(server.url, server.annotator_token) as c:
        lease = c.lease(2).leases
        assert len(lease) == 2
        c.audio(lease[0].lease_id)
        ann = AnnotationIn(
            lease_id=lease[0].lease_id,
            fence=lease[0].fence,
            transcript=SECRET_TRANSCRIPT,
            intent="iot_hue_lightoff",
            flags=["distress"],
            note=SECRET_NOTE,
        )
        k = key()
        receipt = c.submit(ann, k)
        assert c.submit(ann, k) == receipt  # a replay
        mismatch = ann.model_copy(update={"transcript": SECRET_TRANSCRIPT + " again"})
        _expect_rejected(lambda: c.submit(mismatch, k))
        c.amend(receipt.annotation_id, AnnotationPatch(transcript=SECRET_AMENDED))
        batch = c.submit_batch(
            [
                BatchItem(
                    idempotency_key=key(),
                    annotation=AnnotationIn(
                        lease_id=lease[1].lease_id,
                        fence=lease[1].fence,
                        transcript=SECRET_BATCH,
                        intent="weather_query",
                    ),
                ),
                BatchItem(
                    idempotency_key=key(),
                    annotation=AnnotationIn(
                        lease_id=lease[1].lease_id,
                        fence=lease[1].fence,
                        transcript=SECRET_REJECTED,
                        intent="weather_query",
                    ),
                ),
            ]
        )
        assert batch.results[0].status_code == 201
        c.my_stats()
        # validation errors that carry the transcript
        rejected = [
            _expect_rejected(
                lambda: c.amend(receipt.annotation_id, AnnotationPatch(transcript=SECRET_REJECTED))
            ),
            _expect_rejected(
                lambda: c.amend(receipt.annotation_id, AnnotationPatch(intent="zebra_marmalade"))
            ),
        ]
        for e in rejected:
            assert e.status_code == 422
    with QueueClient(server.url, BAD_TOKEN) as c:
        with pytest.raises(Unauthorized) as bad:
            c.lease()
        assert BAD_TOKEN not in str(bad.value)
    with QueueClient(server.url, server.supervisor_token) as c:
        escalated = c.escalations().escalations
        assert any(e.note == SECRET_NOTE for e in escalated)
    with QueueClient(server.url, server.admin_token) as c:
        exported = b"\n".join(c.export_jsonl())
        assert SECRET_AMENDED.encode() in exported
    with QueueClient(server.url, server.annotator_token) as c, pytest.raises(ApiError):
        c.escalations()

    # raw requests whose refusals might echo what they were sent
    raw_refusals: list[httpx.Response] = []
    with server.client(server.annotator_token) as h:
        fresh = h.post("/v1/leases", json={"count": 1}).json()["leases"][0]
        body = {"lease_id": fresh["lease_id"], "fence": fresh["fence"], "intent": "alarm_set"}
        for payload in (
            {**body, "transcript": SECRET_TRANSCRIPT * 200},  # too long
            {**body, "transcript": SECRET_TRANSCRIPT, "intent": "zebra-marmalade-7731"},
            {**body, "transcript": [SECRET_TRANSCRIPT]},  # wrong type
            {**body, "transcript": SECRET_TRANSCRIPT, "extra_zebra-marmalade-7731": 1},
            {**body, "transcript": SECRET_TRANSCRIPT, "fence": "zebra-marmalade-7731"},
        ):
            raw_refusals.append(
                h.post("/v1/annotations", json=payload, headers={"Idempotency-Key": key()})
            )
        raw_refusals.append(
            h.post(
                "/v1/annotations",
                content=b'{"transcript": "zebra-marmalade-7731 \xff',
                headers={"Idempotency-Key": key(), "Content-Type": "application/json"},
            )
        )
        raw_refusals.append(
            h.post(
                "/v1/annotations",
                json={**body, "transcript": SECRET_TRANSCRIPT},
                headers={"Idempotency-Key": "zebra-marmalade-7731 has spaces"},
            )
        )
        raw_refusals.append(
            h.post(
                "/v1/annotations",
                json={**body, "transcript": SECRET_TRANSCRIPT + "x" * 2_000_000},
                headers={"Idempotency-Key": key()},
            )
        )
    for token in (BAD_TOKEN, f"{server.annotator_token}x"):
        raw_refusals.append(
            httpx.get(
                f"{server.url}/v1/me/stats",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        )
    for resp in raw_refusals:
        assert 400 <= resp.status_code < 500, resp.text
        for token in [*tokens, f"{server.annotator_token}x"]:
            assert token not in resp.text, f"a refusal echoed a token: {resp.text}"
        assert "zebra-marmalade-7731 turn off" not in resp.text, (
            f"a refusal echoed the transcript: {resp.text[:300]}"
        )

    # the server-side export command (its output file is the export; its stderr is a log)
    out_file = tmp_path / "export.jsonl"
    r = watch.run(
        [
            "export",
            "--db",
            server.db,
            "--data",
            str(server.data_dir),
            "--out",
            str(out_file),
        ],
        {**os.environ, "ANNOTATOR_HOME": str(tmp_path / "admin-home")},
        "export",
    )
    assert r.returncode == 0, r.stderr.decode()
    assert SECRET_OFFLINE in out_file.read_text()  # the offline work arrived through `sync`
    assert r.stdout == b""

    # a crash in a handler is logged: make one, so the log is known to be written and read
    with server.client(server.annotator_token) as h:
        doomed = h.post("/v1/leases", json={"count": 1}).json()["leases"][0]
        sha = doomed["clip"]["sha256"]
        (audio_file,) = list(server.data_dir.rglob(f"*{sha}*"))
        audio_file.unlink()
        audio_file.mkdir()  # reading a directory raises inside the route
        crashed = h.get(f"/v1/leases/{doomed['lease_id']}/audio")
        assert crashed.status_code == 500, crashed.text
        audio_file.rmdir()

    watch.sample(server.proc.pid if server.proc else 0)
    server.stop()  # flush and close its log

    # ---- argv: no token ever on a command line
    assert watch.argvs, "no process was observed"
    for argv in watch.argvs:
        joined = " ".join(argv)
        for token in tokens:
            assert token not in joined, f"a token is in a process's argv: {argv[:3]}…"
        assert "--token" not in argv

    # ---- logs and files
    server_log = server.log_path.read_bytes()
    assert b"internal error" in server_log, f"the server log is not where we think: {server_log!r}"
    assert b"DEBUG" in server_log, f"the server did not log at DEBUG: {server_log[-2000:]!r}"
    texts: list[tuple[str, bytes]] = [("server log", server_log), *watch.outputs]
    any_files: list[Path] = []
    for path in _files(server.root, home, tmp_path / "admin-home"):
        any_files.append(path)
        if not _is_database(path) and path != out_file:
            texts.append((str(path), path.read_bytes()))
    assert any(str(home) in str(p) for p in any_files), "the client wrote nothing: test is blind"

    for where, data in texts:
        for marker in TRANSCRIPT_MARKERS:
            assert marker.encode() not in data, f"transcript {marker!r} found in {where}"
        for token in tokens:
            assert token.encode() not in data, f"a token found in {where}"
    for path in any_files:  # databases too: tokens are stored hashed
        data = path.read_bytes()
        for token in tokens:
            assert token.encode() not in data, f"a plaintext token is stored in {path}"


def test_debug_logging_in_process_holds_no_secrets(
    clocked_server: ClockedServer, test_wavs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The same app in-process with every logger at DEBUG (the CLI has no log-level flag)."""
    for name in (
        "",
        "annotator",
        "api",
        "uvicorn",
        "uvicorn.error",
        "fastapi",
        "httpx",
        "httpcore",
    ):
        caplog.set_level(logging.DEBUG, logger=name)
    s = clocked_server
    s.ingest(test_wavs(3))
    token = s.token("Debbie Debug", Role.ANNOTATOR)
    with QueueClient(s.url, token) as c:
        lease = c.lease(1).leases[0]
        c.audio(lease.lease_id)
        ann = AnnotationIn(
            lease_id=lease.lease_id,
            fence=lease.fence,
            transcript=SECRET_TRANSCRIPT,
            intent="iot_hue_lightoff",
            flags=["self_harm"],
            note=SECRET_NOTE,
        )
        receipt = c.submit(ann, key())
        c.amend(receipt.annotation_id, AnnotationPatch(transcript=SECRET_AMENDED))
        _expect_rejected(
            lambda: c.amend(receipt.annotation_id, AnnotationPatch(transcript=SECRET_REJECTED))
        )
    with QueueClient(s.url, BAD_TOKEN) as c, pytest.raises(Unauthorized):
        c.my_stats()
    records = [
        f"{r.name} {r.getMessage()} {json.dumps(r.args, default=repr)}" for r in caplog.records
    ]
    for line in records:
        for secret in [token, BAD_TOKEN, *TRANSCRIPT_MARKERS]:
            assert secret not in line, f"{secret!r} logged: {line[:300]}"
