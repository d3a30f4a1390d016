"""The one `annotator` command.

argparse keeps start-up cheap: each subcommand's module is imported only when that subcommand runs,
so the TUI never pays for FastAPI and `annotator --help` answers instantly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

from annotator import __version__

# subcommand -> "module:function"; the function takes the parsed Namespace and returns an exit code.
_HANDLERS: dict[str, str] = {
    "tui": "annotator.launch:run_tui",
    "demo": "annotator.launch:run_demo",
    "serve": "api.server.commands:serve",
    "ingest": "api.server.commands:ingest",
    "token-create": "api.server.people_commands:token_create",
    "token-list": "api.server.people_commands:token_list",
    "export": "api.server.commands:export",
    "token-revoke": "api.server.commands:token_revoke",
    "db-migrate": "api.server.commands:db_migrate",
    "db-copy": "api.server.commands:db_copy",
    "asr-backfill": "api.server.asr.commands:backfill",
    "asr-train": "api.server.asr.commands:train",
    "asr-status": "api.server.asr.commands:status",
    "checkout": "annotator.sync_cli:checkout",
    "sync": "annotator.sync_cli:sync",
    "purge": "annotator.sync_cli:purge",
    "relay": "annotator.relay_cli:relay",
    "doctor": "annotator.doctor:doctor",
    "supervise": "annotator.supervise.services:run_supervise",
    "gold-import": "api.server.quality_commands:gold_import",
    "report": "api.server.quality_commands:report",
    "review": "annotator.review.launch:run_review",
    "welfare": "annotator.welfare_cli:welfare",
}
#: Subcommands that hold clip audio, the cache key or transcripts in memory: no core dumps, not
#: dumpable (annotator/hardening.py), before anything is loaded.
_HARDENED = frozenset({"tui", "demo", "checkout", "sync", "purge", "relay", "supervise", "review"})
#: The same client commands do no linear algebra and use no pydantic plugin: numpy's OpenBLAS need
#: not start a thread per core at import (~50 ms of CPU on the TUI's cold start, and those threads
#: spin on the core the prefetch thread and a local server would use), and pydantic need not read
#: every installed package's entry points looking for plugins (~10 ms). The person's own settings
#: win. Not the demo: the server it starts inherits the environment (and may run ASR).
_LEAN_CLIENT_ENV = {"OPENBLAS_NUM_THREADS": "1", "PYDANTIC_DISABLE_PLUGINS": "__all__"}
_LEAN_CLIENT = _HARDENED - {"demo"}
#: The annotation terminal starts without the cyclic garbage collector until its first screen is
#: drawn (annotator/startup_gc.py: ~90 ms of the cold start).
_GC_HELD_AT_START = frozenset({"tui", "demo"})


def _config_path_text() -> str:
    try:
        from annotator.paths import config_file

        return str(config_file())
    except Exception:  # noqa: BLE001 - the help text must never fail
        return "(platformdirs user config dir)/config.toml"


def _add_client_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # On subcommands the defaults are suppressed, so `annotator --server X sync` keeps X.
    g = p.add_argument_group("connection", argument_default=argparse.SUPPRESS if sub else None)
    g.add_argument("--server", metavar="URL", help="queue server URL (env ANNOTATOR_SERVER)")
    g.add_argument(
        "--token",
        metavar="T",
        help="your API token (env ANNOTATOR_TOKEN; prefer the env or config file: argv is visible "
        "to other users of the host)",
    )
    g.add_argument("--ca-bundle", metavar="FILE", help="CA bundle for a server with a private CA")
    g.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain http:// to a non-loopback server (shown permanently in the UI)",
    )
    g.add_argument("--config", metavar="FILE", help="config file instead of the default")


def _add_ui_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    g = p.add_argument_group("interface", argument_default=argparse.SUPPRESS if sub else None)
    g.add_argument(
        "--audio",
        choices=["auto", "simpleaudio", "miniaudio", "relay", "pulse", "none"],
        help="audio backend (default: auto)",
    )
    g.add_argument("--keymap", metavar="NAME|FILE", help="default, vim, pedal, or a TOML file")


def _add_asr_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--asr-workers", type=int, metavar="N", help="transcriptions at once")


def _add_server_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="URL|PATH",
        help="server database: a SQLite file path, sqlite:///PATH or postgresql://USER@HOST/DB "
        "(env ANNOTATOR_DB_URL; default: SQLite in the user data dir)",
    )
    p.add_argument("--data", metavar="DIR", help="server data directory (SQLite's audio store)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="annotator",
        description="Annotate voice-assistant recordings from the keyboard. With no subcommand, "
        "opens the annotation terminal against the configured server.",
        epilog=f"Config file: {_config_path_text()}",
    )
    parser.add_argument("--version", action="version", version=f"annotator {__version__}")
    _add_client_options(parser)
    _add_ui_options(parser)
    parser.set_defaults(handler="tui")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("demo", help="open the TUI on an embedded server with bundled clips")
    _add_ui_options(p, sub=True)
    p.add_argument("--clips", type=int, default=None, help="how many bundled clips to load")
    p.set_defaults(handler="demo")

    p = sub.add_parser("serve", help="run the reference queue server")
    _add_server_db(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback)"
    )
    p.add_argument("--port", type=int, default=8700, help="TCP port to listen on (default: 8700)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the port and the database"
    )
    p.add_argument("--taxonomy", metavar="FILE", help="replace the default taxonomy (JSON)")
    p.add_argument(
        "--annotations-per-clip",
        type=int,
        default=None,
        metavar="K",
        help="annotations a clip needs",
    )
    p.add_argument(
        "--amend-window",
        type=int,
        default=None,
        metavar="SECONDS",
        help="how long after submitting an annotator may still amend it",
    )
    p.add_argument(
        "--escalation-ack-minutes",
        type=int,
        default=None,
        metavar="MINUTES",
        help="service level: acknowledge an escalation within this (default 15)",
    )
    p.add_argument(
        "--escalation-resolve-minutes",
        type=int,
        default=None,
        metavar="MINUTES",
        help="service level: resolve an escalation within this (default 1440, 24 h)",
    )
    p.add_argument(
        "--gold-rate",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of leased clips that are gold clips, 0 to 1 (default: 0.05)",
    )
    p.add_argument(
        "--max-live-leases",
        type=int,
        default=None,
        metavar="N",
        help="live leases one person may hold at once: prefetch + checkout (default: 40)",
    )
    p.add_argument(
        "--max-lease-lifetime",
        type=int,
        default=None,
        metavar="SECONDS",
        help="how long a lease may live in all, renewals included (default: 43200, 12 h)",
    )
    p.add_argument(
        "--retain-audio-days",
        type=float,
        default=None,
        metavar="N",
        help="delete clips' audio N days after ingest (default: keep; audio of clips annotated"
        " not_device_directed is deleted once annotated either way)",
    )
    p.add_argument(
        "--auth-failure-limit",
        type=int,
        default=None,
        metavar="N",
        help="failed authentications per address per minute before it is answered 429"
        " (default: 10)",
    )
    p.add_argument(
        "--shift-gap-hours",
        type=float,
        default=None,
        metavar="N",
        help="a person's shift (for exposure counts) starts at their first activity after a"
        " pause of at least N hours (default: 4)",
    )
    for flag, default, meaning in (
        ("--break-after-flagged", 3, "escalation-flagged clips before a mandatory break"),
        ("--break-minutes", 15, "length of a mandatory break"),
        ("--max-continuous-minutes", 120, "work without a pause before a mandatory break"),
    ):
        p.add_argument(
            flag, type=int, default=None, metavar="N", help=f"{meaning} (default {default}; 0: off)"
        )
    p.set_defaults(handler="serve")

    p = sub.add_parser("ingest", help="(admin, server-side) queue audio files for annotation")
    _add_server_db(p)
    p.add_argument("paths", nargs="+", metavar="DIR|FILE", help="audio files, or folders of them")
    p.add_argument(
        "--locale", default="en-US", help="the recordings' language, e.g. de-DE (default: en-US)"
    )
    p.add_argument(
        "--asr-hint-from",
        metavar="FILE",
        help="JSONL or TSV mapping file names to ASR hypotheses shown as a starting transcript",
    )
    _add_asr_options(p)
    p.add_argument(
        "--asr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draft transcripts with the ASR engine (default: when the asr extra is installed)",
    )
    p.set_defaults(handler="ingest")

    p = sub.add_parser("asr", help="(admin, server-side) machine drafts and intent suggestions")
    asub = p.add_subparsers(title="asr commands", metavar="ACTION", required=True)
    ap = asub.add_parser("backfill", help="draft every queued clip that has no hint or draft")
    _add_server_db(ap)
    _add_asr_options(ap)
    ap.set_defaults(handler="asr-backfill")
    ap = asub.add_parser("train", help="train intent suggestions on accepted annotations")
    _add_server_db(ap)
    ap.add_argument("--gold-ids", metavar="FILE", help="clip ids (one a line) never to learn from")
    ap.set_defaults(handler="asr-train")
    ap = asub.add_parser("status", help="is the ASR engine installed; which intent model serves")
    _add_server_db(ap)
    ap.set_defaults(handler="asr-status")

    p = sub.add_parser("token", help="(admin, server-side) manage API tokens")
    tsub = p.add_subparsers(title="token commands", metavar="ACTION", required=True)
    tp = tsub.add_parser("create", help="create a token; it is printed once and stored hashed")
    _add_server_db(tp)
    tp.add_argument("name", help="the person's display name")
    tp.add_argument(
        "--role",
        choices=["annotator", "reviewer", "supervisor", "admin"],
        default="annotator",
        help="what the token may do (default: annotator)",
    )
    tp.add_argument(
        "--same-person",
        action="store_true",
        help="NAME is an existing person: give them another token (without it, an existing"
        " name is refused)",
    )
    tp.add_argument(
        "--expires",
        metavar="WHEN",
        help="the token stops working then: 12h, 30d, 8w, or a date (2027-01-31; UTC)",
    )
    tp.set_defaults(handler="token-create")
    tp = tsub.add_parser("list", help="every token: person, role, created, expires, revoked")
    _add_server_db(tp)
    tp.set_defaults(handler="token-list")
    tp = tsub.add_parser("revoke", help="revoke every token of a person, on every server process")
    _add_server_db(tp)
    tp.add_argument("name", help="the person's display name, as given to `token create`")
    tp.set_defaults(handler="token-revoke")

    p = sub.add_parser("db", help="(admin, server-side) the queue database")
    dsub = p.add_subparsers(title="database commands", metavar="ACTION", required=True)
    dp = dsub.add_parser("migrate", help="bring the database's schema up to this version")
    _add_server_db(dp)
    dp.set_defaults(handler="db-migrate")
    dp = dsub.add_parser("copy", help="copy a whole queue into a new, empty database")
    dp.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="the database to copy"
    )
    dp.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="the empty database to fill"
    )
    dp.add_argument(
        "--data", metavar="DIR", help="the SQLite side's data directory (its audio store)"
    )
    dp.set_defaults(handler="db-copy")

    p = sub.add_parser("export", help="(admin, server-side) export annotations")
    _add_server_db(p)
    p.add_argument(
        "--format",
        choices=["jsonl", "hf-audiofolder", "label-studio"],
        default="jsonl",
        help="jsonl (default), or final annotations with their audio: hf-audiofolder (a "
        "directory for datasets' audiofolder loader) or label-studio (task import JSON)",
    )
    p.add_argument(
        "--final",
        action="store_true",
        help="jsonl of final annotations (adjudicated, no identifiers) instead of every annotation",
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help="write here instead of standard output (a directory for hf-audiofolder)",
    )
    p.set_defaults(handler="export")

    p = sub.add_parser("gold", help="(admin, server-side) gold clips with known answers")
    gsub = p.add_subparsers(title="gold commands", metavar="ACTION", required=True)
    gp = gsub.add_parser("import", help="mark queued clips as gold, with their expected answers")
    _add_server_db(gp)
    gp.add_argument(
        "file",
        metavar="FILE.jsonl",
        help='one object a line: {"clip": SOURCE_NAME or SHA256, "transcript": ..., '
        '"intent": ..., "flags": [...]}',
    )
    gp.add_argument("--taxonomy", metavar="FILE", help="the server's taxonomy, if not the default")
    gp.set_defaults(handler="gold-import")

    p = sub.add_parser(
        "report", help="(admin, server-side) quality: throughput, gold accuracy, agreement"
    )
    _add_server_db(p)
    p.add_argument("--format", choices=["table", "json"], default="table", help="default: table")
    p.add_argument("--taxonomy", metavar="FILE", help="the server's taxonomy, if not the default")
    p.set_defaults(handler="report")

    p = sub.add_parser("review", help="(reviewer) decide clips whose annotations disagree")
    _add_client_options(p, sub=True)
    _add_ui_options(p, sub=True)
    p.set_defaults(handler="review")

    p = sub.add_parser("checkout", help="lease clips and cache them to work offline")
    _add_client_options(p, sub=True)
    p.add_argument(
        "--count", type=int, required=True, metavar="N", help="how many clips to lease and cache"
    )
    p.set_defaults(handler="checkout")

    p = sub.add_parser("sync", help="send the outbox to the server")
    _add_client_options(p, sub=True)
    p.add_argument("--status", action="store_true", help="show outbox, conflicts and cache")
    p.add_argument("--conflicts-jsonl", metavar="FILE", help="export the conflicts list as JSONL")
    p.add_argument(
        "--release",
        action="store_true",
        help="after sending, give back checked-out clips you have not started (no draft)",
    )
    p.set_defaults(handler="sync")

    p = sub.add_parser("welfare", help="your break state and content opt-outs on the server")
    _add_client_options(p, sub=True)
    p.add_argument(
        "--opt-out",
        action="append",
        metavar="FLAG",
        help="a flag category (e.g. minor) you are not to be served; repeat; `none` clears",
    )
    p.set_defaults(handler="welfare")

    p = sub.add_parser("purge", help="wipe the local cache, drafts and outbox")
    p.add_argument("--force", action="store_true", help="even with unsynced work")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler="purge")

    p = sub.add_parser("relay", help="(on your laptop) play audio sent by a remote annotator")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to listen on, 127.0.0.1 or ::1 (default: 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=47001,
        help="port to listen on; the laptop end of `ssh -R` (default: 47001)",
    )
    p.add_argument(
        "--audio",
        choices=["auto", "simpleaudio", "miniaudio", "none"],
        default="auto",
        help="this laptop's sound output (default: auto, the first that works)",
    )
    p.add_argument(
        "--new-secret",
        action="store_true",
        help="replace the stored pairing secret with a new one (the TUI then asks for it)",
    )
    p.set_defaults(handler="relay")

    p = sub.add_parser(
        "supervise", help="(supervisors) the escalations console: hear, acknowledge, resolve"
    )
    _add_client_options(p, sub=True)
    _add_ui_options(p, sub=True)
    p.set_defaults(handler="supervise")

    p = sub.add_parser("doctor", help="check terminal, audio, server, token, cache and keymap")
    _add_client_options(p, sub=True)
    _add_ui_options(p, sub=True)
    p.set_defaults(handler="doctor")
    return parser


def _resolve(spec: str) -> Callable[[argparse.Namespace], int]:
    module, func = spec.split(":")
    return cast(Callable[[argparse.Namespace], int], getattr(importlib.import_module(module), func))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.handler in _LEAN_CLIENT:
        for name, value in _LEAN_CLIENT_ENV.items():
            os.environ.setdefault(name, value)
    if args.handler in _GC_HELD_AT_START:
        from annotator.startup_gc import hold

        hold()
    if args.handler in _HARDENED:
        from annotator.hardening import harden_process

        harden_process()
    handler = _resolve(_HANDLERS[args.handler])
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
