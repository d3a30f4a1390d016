"""`annotator` and `annotator demo`: assemble the parts, run the App, tidy up.

Start-up errors (config, keymap, no server, insecure URL) are messages on stderr with exit code 2,
never a traceback and never a half-started App. Heavy modules are imported inside the functions that
need them: the client's cold start to the first audible clip is budgeted at one second, and FastAPI
and uvicorn must never be on this path (the demo runs the server as a separate process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path

from annotator.services import LaunchError, Services, build_services
from api.text_safety import for_terminal

#: When set, `annotator demo` writes its server URL, database and tokens here (JSON) for tests.
DEMO_STATE_ENV = "ANNOTATOR_DEMO_STATE_FILE"
HEALTH_TIMEOUT_S = 30.0


def _fail(message: str) -> int:
    # The message quotes config files, servers and subprocess output: escaped for the terminal.
    sys.stderr.write(for_terminal(f"annotator: {message}", keep_newlines=True) + "\n")
    return 2


# ---------------------------------------------------------------- annotator (the TUI)


def run_tui(args: argparse.Namespace) -> int:
    try:
        services = build_services(args)
    except LaunchError as e:
        return _fail(str(e))
    return run_app(services)


def run_app(services: Services) -> int:
    from annotator.app import AnnotatorApp

    app = AnnotatorApp(services)
    try:
        services.start()
        app.run()
    finally:
        summary = services.shutdown()
    if summary is not None and summary.text():
        sys.stdout.write(f"annotator: {summary.text()}\n")  # our own words and times only
    return app.return_code or 0


# ---------------------------------------------------------------- annotator demo


def run_demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix=f"run-{os.getpid()}-", dir=demo_dir()) as tmp:
        root = Path(tmp)
        try:
            with _demo_server(root, clips=getattr(args, "clips", None)) as (url, token):
                os.environ["ANNOTATOR_HOME"] = str(root / "home")
                os.environ["ANNOTATOR_SERVER"] = url
                os.environ["ANNOTATOR_TOKEN"] = token
                for name in ("server", "token", "config"):
                    setattr(args, name, None)
                return run_tui(args)
        except LaunchError as e:
            return _fail(str(e))


def demo_dir() -> Path:
    """Where demo runs keep their throwaway server, with the runs whose process is gone removed.

    Under the user's cache dir, not /tmp: a demo killed with its terminal cannot clean up after
    itself, so the next one does (each run's folder is named after its process id)."""
    from annotator.paths import cache_dir, ensure_private_dir
    from annotator.workbench.sitting import process_alive

    base = ensure_private_dir(cache_dir() / "demo")
    for run in base.glob("run-*-*"):
        pid = run.name.split("-")[1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(run, ignore_errors=True)
    return base


def _annotator_cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "annotator.cli", *argv]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_step(argv: list[str], what: str) -> str:
    # argv is our own interpreter and subcommand, never user text run through a shell.
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise LaunchError(f"demo: {what} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _create_token(db: Path, name: str, role: str) -> str:
    out = _run_step(
        _annotator_cmd("token", "create", name, "--role", role, "--db", str(db)), "token create"
    )
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if not lines:
        raise LaunchError("demo: token create printed no token")
    return lines[-1]


def demo_clips_dir() -> Path:
    return Path(str(resources.files("annotator").joinpath("demo_clips")))


def _demo_batches(
    clips: Path, out_dir: Path, limit: int | None
) -> list[tuple[str, Path, list[Path]]]:
    """The bundled manifest as ingest batches, one per locale: (locale, hints JSONL, files)."""
    manifest = json.loads((clips / "manifest.json").read_text("utf-8"))
    entries = manifest["clips"] if isinstance(manifest, dict) else manifest
    if limit is not None:
        entries = entries[: max(1, limit)]
    by_locale: dict[str, list[dict[str, str]]] = {}
    for entry in entries:
        by_locale.setdefault(entry.get("locale") or "en-US", []).append(entry)
    batches: list[tuple[str, Path, list[Path]]] = []
    for locale, group in by_locale.items():
        hints = out_dir / f"asr_hints.{locale}.jsonl"
        with hints.open("w", encoding="utf-8") as f:
            for entry in group:
                # The engine's drafts (scripts/make_demo_clips.py) travel with their words, so
                # the clips are queued as machine drafts; a plain hint as a hint.
                if "asr_words" in entry or entry.get("asr_hint"):
                    keys = ("file", "asr_hint", "asr_words")
                    f.write(json.dumps({k: entry[k] for k in keys if k in entry}) + "\n")
        batches.append((locale, hints, [clips / entry["file"] for entry in group]))
    return batches


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(f"demo: the server exited at start (status {proc.returncode})")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise LaunchError(f"demo: the server did not answer on {url} within {HEALTH_TIMEOUT_S:.0f} s")


@contextmanager
def _demo_server(root: Path, *, clips: int | None) -> Iterator[tuple[str, str]]:
    db, data = root / "server" / "queue.db", root / "server" / "data"
    db.parent.mkdir(parents=True)
    sys.stderr.write("annotator demo: preparing a throwaway server…\n")
    token = _create_token(db, "demo", "annotator")
    for locale, hints, files in _demo_batches(demo_clips_dir(), root, clips):
        argv = _annotator_cmd("ingest", *map(str, files), "--db", str(db), "--data", str(data))
        argv += ["--locale", locale, "--asr-hint-from", str(hints), "--no-asr"]
        _run_step(argv, "ingest")
    state_file = os.environ.get(DEMO_STATE_ENV)
    admin = _create_token(db, "demo-admin", "admin") if state_file else None
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serve = _annotator_cmd("serve", "--db", str(db), "--data", str(data))
    serve += ["--host", "127.0.0.1", "--port", str(port)]
    log_file = (root / "server.log").open("wb")
    # Our own interpreter and subcommand, no shell: nothing here comes from untrusted input.
    proc = subprocess.Popen(serve, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)  # noqa: S603
    try:
        _wait_healthy(url, proc)
        if state_file:
            Path(state_file).write_text(
                json.dumps(
                    {"url": url, "db": str(db), "data": str(data), "token": token,
                     "admin_token": admin, "server_pid": proc.pid}
                ),
                "utf-8",
            )  # fmt: skip
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
