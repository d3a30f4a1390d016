"""Every option of every `annotator` command says what it does (`--help` is the manual on a host).

The server's commands (serve, ingest, token create, export: api/server/commands.py) take their
arguments from the same parser, so walking it covers them too.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from annotator.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: str = "annotator") -> Iterator[tuple[str, object]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", helps.get(name)
                yield from walk(sub, f"{path} {name}")
        elif action.help is not argparse.SUPPRESS:
            yield f"{path} {'/'.join(action.option_strings) or action.dest}", action.help


def test_every_command_and_option_has_a_one_line_help() -> None:
    missing = [where for where, text in walk(build_parser()) if not str(text or "").strip()]
    assert missing == [], f"options without a help text: {missing}"
    multi = [where for where, text in walk(build_parser()) if "\n" in str(text or "")]
    assert multi == [], multi


def test_the_walk_sees_the_server_commands_and_the_relay() -> None:
    seen = {where for where, _ in walk(build_parser())}
    for expected in (
        "annotator serve --port",
        "annotator ingest --locale",
        "annotator token create --role",
        "annotator export --format",
        "annotator relay --host",
        "annotator relay --new-secret",
        "annotator relay --audio",
    ):
        assert expected in seen, sorted(seen)
