"""The server-side subcommands: `annotator serve`, `ingest`, `token create|revoke`, `export`,
`db migrate|copy`. Each works on either backend (`--db` / ANNOTATOR_DB_URL).

Each takes the argparse Namespace built in `annotator/cli.py` and returns an exit code: 0 done,
1 done with problems (e.g. files skipped by ingest), 2 bad usage or unusable input. Errors are one
line on stderr naming the problem and the fix, never a traceback.

Environment:

ANNOTATOR_DB_URL
    The queue database when `--db` is not given: `sqlite:///PATH` or
    `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` (libpq's PGPASSWORD / ~/.pgpass work too).

ANNOTATOR_SERVER_LOG_LEVEL
    `serve`'s log level: debug, info, warning or error (any case). Unset, the server's own
    messages log at info and uvicorn's at warning; set, both log at that level. Even at debug
    nothing logs a request body, a header or a token: uvicorn's access log stays off, its debug
    lines name connections only, and the app logs the route and exception type of errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from api.models import DisplayName
from api.private_file import PrivateFileError, private_output
from api.server.settings import ServerSettings
from api.text_safety import for_terminal

if TYPE_CHECKING:
    from api.server.repository import Repository

log = logging.getLogger("annotator.server")

_NAME = TypeAdapter(DisplayName)

LOG_LEVEL_ENV = "ANNOTATOR_SERVER_LOG_LEVEL"
DB_URL_ENV = "ANNOTATOR_DB_URL"
LOG_LEVELS = ("debug", "info", "warning", "error")


class UsageError(Exception):
    """Bad flags or unusable files: printed as one line, exit code 2."""


def _err(message: str) -> None:
    _note(f"annotator: {message}")


def _note(text: str) -> None:
    # Messages quote file names and names an admin typed: escaped, so none can drive the terminal.
    sys.stderr.write(for_terminal(text, keep_newlines=True) + "\n")
    sys.stderr.flush()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


#: `serve` flags that set a `ServerSettings` field as they are.
_SERVE_FLAGS = {
    "--max-live-leases": "max_live_leases",
    "--max-lease-lifetime": "max_lease_lifetime_s",
    "--retain-audio-days": "retain_audio_days",
    "--auth-failure-limit": "auth_failure_limit",
    "--shift-gap-hours": "shift_gap_hours",
}


def _settings(args: argparse.Namespace) -> ServerSettings:
    from api.server.backends import CannotOpen, normalize_url

    values: dict[str, Any] = {}
    db = getattr(args, "db", None) or os.environ.get(DB_URL_ENV, "").strip() or None
    if db is not None:
        try:
            values["db_url"] = normalize_url(db)
        except CannotOpen as e:
            raise UsageError(str(e)) from None
    if (data := _path(getattr(args, "data", None))) is not None:
        values["data_dir"] = data.resolve()
    if (taxonomy := _path(getattr(args, "taxonomy", None))) is not None:
        if not taxonomy.is_file():
            raise UsageError(f"--taxonomy {taxonomy}: no such file")
        values["taxonomy_path"] = taxonomy.resolve()
    if (k := getattr(args, "annotations_per_clip", None)) is not None:
        values["annotations_per_clip"] = k
    if (window := getattr(args, "amend_window", None)) is not None:
        values["amend_window_s"] = window
    for flag in ("escalation_ack_s", "escalation_resolve_s"):
        if (minutes := getattr(args, flag.removesuffix("_s") + "_minutes", None)) is not None:
            values[flag] = minutes * 60
    if (rate := getattr(args, "gold_rate", None)) is not None:
        values["gold_rate"] = rate
    for flag, field in _SERVE_FLAGS.items():
        if (value := getattr(args, flag.removeprefix("--").replace("-", "_"), None)) is not None:
            values[field] = value
    for name in ("break_after_flagged", "break_minutes", "max_continuous_minutes"):
        if (number := getattr(args, name, None)) is not None:
            values[name] = number
    try:
        return ServerSettings(**values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        flag = {
            "annotations_per_clip": "--annotations-per-clip",
            "amend_window_s": "--amend-window",
            "escalation_ack_s": "--escalation-ack-minutes",
            "escalation_resolve_s": "--escalation-resolve-minutes",
            "gold_rate": "--gold-rate",
            **{field: flag for flag, field in _SERVE_FLAGS.items()},
            "break_after_flagged": "--break-after-flagged",
            "break_minutes": "--break-minutes",
            "max_continuous_minutes": "--max-continuous-minutes",
        }.get(where, where)
        raise UsageError(f"{flag}: {first['msg']}") from None


def _open_repo(
    settings: ServerSettings, *, migrate: bool = True, existing: bool = False
) -> Repository:
    """`existing`: a command that only reads refuses a SQLite path with no file (opening it would
    make a new, empty queue there, and a mistyped --db would read as "nothing in the queue")."""
    from api.server.backends import CannotOpen, is_postgres, open_repository, sqlite_path

    url = settings.database_url
    if existing and not is_postgres(url) and not sqlite_path(url).exists():
        raise UsageError(
            f"no queue database at {sqlite_path(url)}: check --db (or ANNOTATOR_DB_URL); "
            "`annotator serve` or `annotator db migrate` creates a new one"
        )
    try:
        return open_repository(
            settings.database_url,
            settings.data_dir,
            annotations_per_clip=settings.annotations_per_clip,
            migrate=migrate,
        )
    except CannotOpen as e:
        raise UsageError(str(e)) from None


def _run(body: Any, args: argparse.Namespace) -> int:
    try:
        return int(body(args))
    except UsageError as e:
        _err(str(e))
        return 2


# ---------------------------------------------------------------- serve


def serve(args: argparse.Namespace) -> int:
    return _run(_serve, args)


def _check_tls(args: argparse.Namespace) -> tuple[str | None, str | None]:
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if bool(cert) != bool(key):
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither for HTTP")
    for flag, value in (("--tls-cert", cert), ("--tls-key", key)):
        if value and not Path(value).is_file():
            raise UsageError(f"{flag} {value}: no such file")
    return cert, key


def _log_levels() -> tuple[int, str]:
    """(the root logger's level, uvicorn's `log_level`) from ANNOTATOR_SERVER_LOG_LEVEL."""
    raw = os.environ.get(LOG_LEVEL_ENV, "").strip().lower()
    if not raw:
        return logging.INFO, "warning"
    if raw not in LOG_LEVELS:
        raise UsageError(
            f"{LOG_LEVEL_ENV}={raw[:20]!r}: give one of {', '.join(LOG_LEVELS)}, or unset it"
        )
    return logging.getLevelNamesMapping()[raw.upper()], raw


def _serve(args: argparse.Namespace) -> int:
    # uvicorn here, not at the top: the other commands (report, export, token...) never serve.
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.server.announcing_server import AnnouncingServer
    from api.server.app import SETTINGS_ENV, create_app, tune_gc_for_serving
    from api.server.http_protocol import CoalescingHttpToolsProtocol

    settings = _settings(args)
    cert, key = _check_tls(args)
    workers = int(getattr(args, "workers", 1) or 1)
    if not 1 <= workers <= 64:
        raise UsageError("--workers: give between 1 and 64 processes")
    port = int(args.port)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: not a TCP port (0 picks a free one)")
    root_level, uvicorn_level = _log_levels()
    logging.basicConfig(level=root_level, format="%(levelname)s %(name)s: %(message)s")
    from api.server.asr.status import asr_status_line

    _note(asr_status_line(check_model=False))

    # Build the app once here: a bad taxonomy or an unwritable database fails now, with a clear
    # message, instead of inside every worker; it also runs the schema migration once.
    repo = _open_repo(settings)
    try:
        app = create_app(settings, repo=repo, owns_repo=True)
    except (OSError, ValueError, ValidationError) as e:
        repo.close()
        raise UsageError(f"cannot start the server: {e}") from None
    scheme = "https" if cert else "http"
    log.debug(
        "starting: %s, %d worker(s), database %s, log level %s",
        scheme,
        workers,
        repo.describe(),
        logging.getLevelName(root_level).lower(),
    )
    common: dict[str, Any] = {
        "host": args.host,
        "port": port,
        "ssl_certfile": cert,
        "ssl_keyfile": key,
        # Off for speed and privacy; errors still go to the log.
        "access_log": False,
        # Never "trace": uvicorn's trace level logs the ASGI messages, bodies included.
        "log_level": uvicorn_level,
        "timeout_graceful_shutdown": 5,
        "server_header": False,
        "http": CoalescingHttpToolsProtocol,
    }
    sock = _listen(args.host, port)
    if workers == 1:
        tune_gc_for_serving()
        server = AnnouncingServer(uvicorn.Config(app, **common), scheme)
        server.run(sockets=[sock])
        return 0 if server.started else 1
    # Several processes share the listening socket and the database; each builds its own app
    # (and connections) from the settings passed through the environment.
    repo.close()
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    config = uvicorn.Config("api.server.app:app_from_env", factory=True, workers=workers, **common)
    _announce(scheme, args.host, sock)
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        hint = " (is another server running? pick another --port)" if port else ""
        why = os.strerror(e.errno) if e.errno else str(e)
        raise UsageError(f"cannot listen on {host}:{port}: {why}{hint}") from None
    sock.set_inheritable(True)  # --workers processes inherit it
    return sock


def _announce(scheme: str, host: str, sock: socket.socket) -> None:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    _say(f"serving on {scheme}://{shown}:{port}")


# ------------------------------------------------ tokens (create, list: people_commands)


def _display_name(args: argparse.Namespace) -> str:
    try:
        return _NAME.validate_python(str(args.name))
    except ValidationError as e:
        problem = e.errors(include_url=False)[0]["msg"]
        raise UsageError(
            f"NAME: {problem} (give the person's display name, 1-64 printable characters)"
        ) from None


def token_revoke(args: argparse.Namespace) -> int:
    return _run(_token_revoke, args)


def _token_revoke(args: argparse.Namespace) -> int:
    name = _display_name(args)
    repo = _open_repo(_settings(args), existing=True)
    try:
        count = repo.revoke_tokens(name)
    finally:
        repo.close()
    if not count:
        _err(f"no live token for {name!r}: nothing revoked (names are matched exactly)")
        return 1
    _note(
        f"revoked {count} token{'s' if count != 1 else ''} of {name!r}; every server process"
        " refuses them within a second"
    )
    return 0


# ---------------------------------------------------------------- db migrate / copy


def db_migrate(args: argparse.Namespace) -> int:
    return _run(_db_migrate, args)


def _db_migrate(args: argparse.Namespace) -> int:
    from api.server.migrations import SCHEMA_VERSION

    repo = _open_repo(_settings(args))  # opening migrates
    try:
        where, applied = repo.describe(), repo.applied_migrations
    finally:
        repo.close()
    done = f"applied {', '.join(map(str, applied))}; " if applied else "already current; "
    _note(f"{where}: {done}schema version {SCHEMA_VERSION}")
    return 0


def db_copy(args: argparse.Namespace) -> int:
    return _run(_db_copy, args)


def _db_copy(args: argparse.Namespace) -> int:
    from api.server.backends import CannotOpen, normalize_url
    from api.server.db_copy import NotEmpty, copy_queue

    try:
        source_url, target_url = normalize_url(args.source), normalize_url(args.target)
    except CannotOpen as e:
        raise UsageError(str(e).replace("--db", "--from/--to")) from None
    if source_url == target_url:
        raise UsageError("--from and --to name the same database")
    base = _settings(argparse.Namespace(data=getattr(args, "data", None)))
    source = _open_repo(base.model_copy(update={"db_url": source_url}))
    try:
        target = _open_repo(base.model_copy(update={"db_url": target_url}))
        try:
            counts = copy_queue(source, target)
        except NotEmpty as e:
            raise UsageError(f"--to {target.describe()}: {e}") from None
        finally:
            target.close()
    finally:
        source.close()
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    _note(f"copied {summary}")
    return 0


# ---------------------------------------------------------------- export


def export(args: argparse.Namespace) -> int:
    return _run(_export, args)


def _export(args: argparse.Namespace) -> int:
    from api.server.export import export_lines

    repo = _open_repo(_settings(args), existing=True)
    if args.format != "jsonl" or getattr(args, "final", False):
        from api.server.quality_commands import export_finals

        try:
            return export_finals(args, repo)
        finally:
            repo.close()
    count = 0
    try:
        out_path = _path(getattr(args, "out", None))
        if out_path is None:
            sink = sys.stdout.buffer
            for line in export_lines(repo):
                sink.write(line)
                count += 1
            sink.flush()
        else:
            # Transcripts: a random 0600 temp file renamed into place, never through a symlink.
            try:
                with private_output(out_path) as f:
                    for line in export_lines(repo):
                        f.write(line)
                        count += 1
            except PrivateFileError as e:
                raise UsageError(f"--out: {e}") from None
    finally:
        repo.close()
    _note(f"exported {count} annotation{'s' if count != 1 else ''}")
    return 0


# ---------------------------------------------------------------- ingest


def ingest(args: argparse.Namespace) -> int:
    return _run(_ingest, args)


def _ingest(args: argparse.Namespace) -> int:
    from api.server.asr.commands import draft_ingested, ingest_wants_asr
    from api.server.asr.stored_drafts import attach_draft_words, load_draft_words
    from api.server.ingest import ingest_paths, load_asr_hints
    from api.server.sql_repo import SqlRepository

    engine = ingest_wants_asr(args)  # before ingesting: `--asr` without the extra stops here
    hints: dict[str, str] = {}
    draft_words: dict[str, list[tuple[str, float]]] = {}  # hints that are machine drafts
    hint_file = _path(getattr(args, "asr_hint_from", None))
    if hint_file is not None:
        try:
            hints = load_asr_hints(hint_file)
            draft_words = load_draft_words(hint_file)
        except ValueError as e:
            raise UsageError(f"--asr-hint-from: {e}") from None
    paths = [Path(p).expanduser() for p in args.paths]
    repo = _open_repo(_settings(args))
    # Durable per batch of files rather than per file (one fsync each made big ingests crawl);
    # nothing is reported until the last batch is durable.
    batcher = repo.batcher()
    try:
        report = ingest_paths(
            paths,
            locale=args.locale,
            asr_hints=hints,
            add_clip=batcher.add_clip,
            progress=sys.stderr.isatty(),
        )
        batcher.flush()
        if draft_words and isinstance(repo, SqlRepository):
            attach_draft_words(repo, [cid for _, cid in report.ingested], draft_words)
        batcher.repo.refresh_statistics()
        undrafted = 0
        if engine is not None:
            undrafted = draft_ingested(repo, engine, [cid for _, cid in report.ingested], args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    finally:
        repo.close()
    if batcher.lost_to_race:  # another ingest queued the same audio in the meantime
        lost = set(batcher.lost_to_race)
        report.duplicates += [name for name, cid in report.ingested if cid in lost]
        report.ingested = [(name, cid) for name, cid in report.ingested if cid not in lost]
    report.print_skipped()
    _note(report.summary())
    return 1 if report.skipped or undrafted else 0
