"""`make bench` / `make bench-quick`: measure every figure as the repo stands, print one table and
write bench/results.json. Each figure comes from real processes on loopback in this run."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.results import Figure, loadavg, print_table, write_json

Suite = Callable[[bool], list[Figure]]


def _server(quick: bool) -> list[Figure]:
    from bench import server_bench

    return server_bench.figures(quick)


def _audio(quick: bool) -> list[Figure]:
    from bench import audio_start

    return audio_start.figures(quick)


def _sync(quick: bool) -> list[Figure]:
    from bench import sync_bench

    return sync_bench.figures(quick)


def _offline(quick: bool) -> list[Figure]:
    from bench import offline_bench

    return offline_bench.figures(quick)


def _relay(quick: bool) -> list[Figure]:
    from bench import relay_bench

    return relay_bench.figures(quick)


def _tui(quick: bool) -> list[Figure]:
    from bench import tui_bench

    return tui_bench.figures(quick)


def _supervise(quick: bool) -> list[Figure]:
    from bench import supervise_bench

    return supervise_bench.figures(quick)


def _asr(quick: bool) -> list[Figure]:
    from bench import asr_bench

    return asr_bench.figures(quick)


def _escalation(quick: bool) -> list[Figure]:
    from bench import escalation_bench

    return escalation_bench.figures(quick)


SUITES: dict[str, Suite] = {
    "server": _server,
    "audio": _audio,
    "sync": _sync,
    "offline": _offline,
    "tui": _tui,
    "relay": _relay,
    "asr": _asr,
    "escalation": _escalation,
    "supervise": _supervise,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a few minutes)")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run only these")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    started, load_start = time.time(), loadavg()
    for name, suite in SUITES.items():
        if args.only and name not in args.only:
            continue
        print(f"… {name}", file=sys.stderr, flush=True)
        try:
            figures += suite(args.quick)
        except Exception as e:  # one broken suite must not hide the others' figures
            traceback.print_exc()
            figures.append(
                Figure(
                    f"{name} (failed)",
                    None,
                    "",
                    detail=f"{type(e).__name__}: {e}",
                    no_floor="the suite failed before measuring",
                )
            )
    print_table(figures)
    meta = {
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "loadavg_start": load_start,
    }
    write_json(figures, Path(args.out), meta)
    print(f"written: {args.out}")
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
