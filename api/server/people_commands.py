"""`annotator token create` and `annotator token list` (issue 10 finding 3; the rules and the
storage are `api.server.people_store`). `token revoke` stays in `api.server.commands`."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from api.models import Role
from api.server.commands import UsageError, _display_name, _note, _open_repo, _run, _say, _settings
from api.server.people_store import NameRefused, NoSuchPerson, PeopleStore, PersonExists
from api.server.sql_repo import SqlRepository
from api.text_safety import for_terminal

_DURATION = re.compile(r"^(\d{1,5})\s*([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
#: The longest `--expires` accepted: long-lived tokens are what expiry is meant to avoid.
MAX_EXPIRY = timedelta(days=400)


def parse_expires(value: str, now: datetime) -> datetime:
    """`--expires`: a duration (`12h`, `30d`, `8w`) from now, or a date/time (`2027-01-31`,
    `2027-01-31T18:00`, UTC unless it names its zone). `UsageError` saying the forms."""
    text = value.strip().lower()
    match = _DURATION.match(text)
    if match:
        when = now + int(match.group(1)) * _UNITS[match.group(2)]
    else:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(
                f"--expires {value[:40]!r}: give a duration (12h, 30d, 8w) or a date"
                " (2027-01-31, 2027-01-31T18:00)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    if when <= now:
        raise UsageError(f"--expires {value[:40]!r}: that is not in the future")
    if when - now > MAX_EXPIRY:
        raise UsageError(f"--expires {value[:40]!r}: at most {MAX_EXPIRY.days} days ahead")
    return when


def _store(
    args: argparse.Namespace, *, existing: bool = False
) -> tuple[SqlRepository, PeopleStore]:
    repo = _open_repo(_settings(args), existing=existing)
    if not isinstance(repo, SqlRepository):  # pragma: no cover - every backend is SQL
        repo.close()
        raise UsageError("this database does not keep people")
    return repo, PeopleStore(repo)


def token_create(args: argparse.Namespace) -> int:
    return _run(_token_create, args)


def _token_create(args: argparse.Namespace) -> int:
    name = _display_name(args)
    role = Role(args.role)
    now = datetime.now(UTC)
    expires = parse_expires(args.expires, now) if getattr(args, "expires", None) else None
    same = bool(getattr(args, "same_person", False))
    repo, people = _store(args)
    try:
        token, person = people.create_token(
            name, role, expires_at=expires, same_person=same, now=now
        )
    except PersonExists as e:
        live = f"{e.live_tokens} live token{'s' if e.live_tokens != 1 else ''}"
        raise UsageError(
            f"{name!r} is already a person (id {e.person.person_id}, {live}). To give that same"
            f" person another token: annotator token create --same-person {name!r}."
            " For someone else, choose another name."
        ) from None
    except NoSuchPerson:
        raise UsageError(
            f"--same-person: nobody is called {name!r} (names are matched exactly;"
            " see `annotator token list`); leave out --same-person to add a new person"
        ) from None
    except NameRefused as e:
        raise UsageError(f"NAME {name!r}: {e}") from None
    finally:
        repo.close()
    _say(token)
    until = f", expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    _note(
        f"token for {person.name!r} (person {person.person_id}, {role.value}{until}): shown"
        " once, only its hash is stored. Hand it over privately; the person sets it as"
        " ANNOTATOR_TOKEN or in their config file."
    )
    return 0


def token_list(args: argparse.Namespace) -> int:
    return _run(_token_list, args)


def _when(t: datetime | None) -> str:
    return "-" if t is None else f"{t:%Y-%m-%d %H:%M}"


def _token_list(args: argparse.Namespace) -> int:
    repo, people = _store(args, existing=True)
    try:
        tokens = people.tokens()
    finally:
        repo.close()
    now = datetime.now(UTC)
    rows = [("PERSON", "PERSON ID", "ROLE", "CREATED", "EXPIRES", "STATE")]
    for t in tokens:
        state = t.state(now)
        if t.revoked_at is not None:
            state = f"revoked {_when(t.revoked_at)}"
        # Names are an admin's input (older ones predate the rules): escaped for the terminal.
        rows.append(
            (
                for_terminal(t.name),
                t.person_id or "-",
                t.role.value,
                _when(t.created_at),
                _when(t.expires_at),
                state,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        _say("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    _note(
        f"{len(tokens)} token{'s' if len(tokens) != 1 else ''} (times in UTC); never shown:"
        " the tokens themselves or their hashes"
    )
    return 0
