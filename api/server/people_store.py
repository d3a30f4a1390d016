"""People and their tokens (issue 10 finding 3): storage, name rules, listing.

A token belongs to a person (`tokens.person_id` → `people`, migration in `api.server.migrations`).
A person has a random `person_id` and a unique, validated `name`; the name is what leases and
annotations record as their `annotator` (unique and never given to someone else, so it keys the
person; `person_id` is what an admin view shows beside it). Two tokens of one name are the same
person only because an admin said so (`token create --same-person`), never by accident.

Name rules (`check_new_name`, for new people): the `api.models.DisplayName` rule first (1-64
characters, no control/bidi/zero-width), then letters, digits, spaces and `.-_'@+` only, starting
with a letter or digit, single spaces, not mixing Latin/Greek/Cyrillic (look-alike letters), and
not equal to an existing name up to case and width (NFKC casefold): "Ann" and "ａｎｎ" are
refused beside "ann".

Read side for admin views (`people()`, `tokens()`): never the token or its hash.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from api.models import Role

if TYPE_CHECKING:
    from api.server.sql_repo import SqlRepository

NAME_PUNCTUATION = frozenset(" .-_'@+")
#: Scripts whose letters look alike: a name may use one of them, not several.
LOOKALIKE_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})


class NameRefused(ValueError):
    """A name for a new person breaks the rules; the message says which and how to fix it."""


class PersonExists(ValueError):
    """`token create` for a name that is already a person, without `--same-person`."""

    def __init__(self, person: Person, live_tokens: int) -> None:
        super().__init__(person.name)
        self.person = person
        self.live_tokens = live_tokens


class NoSuchPerson(LookupError):
    """`--same-person` for a name that is nobody yet."""


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One token as an admin may see it: whose, what role, when; never the token or its hash."""

    person_id: str | None
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "live"


def name_key(name: str) -> str:
    """What two names must not share: equal up to case and compatibility width."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_new_name(name: str) -> str:
    """`name` (already a valid `DisplayName`) in NFC, or `NameRefused` saying why."""
    name = unicodedata.normalize("NFC", name)
    if not (name[:1].isalpha() or name[:1].isdigit()):
        raise NameRefused("start the name with a letter or a digit")
    if "  " in name:
        raise NameRefused("use single spaces between words")
    scripts: set[str] = set()
    for ch in name:
        category = unicodedata.category(ch)
        if category[0] in "LN" or category == "Mn":
            if category[0] == "L":
                script = unicodedata.name(ch, "?").split(" ")[0]
                if script in LOOKALIKE_SCRIPTS:
                    scripts.add(script)
            continue
        if ch not in NAME_PUNCTUATION:
            raise NameRefused(
                f"{ch!a} is not allowed: use letters, digits, spaces and . - _ ' @ + only"
            )
    if len(scripts) > 1:
        raise NameRefused(
            f"the name mixes {' and '.join(sorted(scripts))} letters (they look alike):"
            " write it in one script"
        )
    return name


def parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


class PeopleStore:
    """`people` and `tokens` over a `SqlRepository`'s connections (both backends)."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    def _person(self, conn: Any, name: str) -> Person | None:
        row = self.repo._one(
            conn, "SELECT person_id, name, created_at FROM people WHERE name = ?", (name,)
        )
        return Person(row[0], row[1], parse_time(row[2]) or datetime.now(UTC)) if row else None

    def create_token(
        self,
        name: str,
        role: Role,
        *,
        expires_at: datetime | None = None,
        same_person: bool | None = None,
        now: datetime | None = None,
    ) -> tuple[str, Person]:
        """A new token (returned once; only its hash is kept) and the person it belongs to.

        `same_person`: True — `name` must be an existing person (`NoSuchPerson`); False — it
        must be a new one (`PersonExists`; `NameRefused` when it breaks the rules or is too close
        to an existing name); None — either (the test fixtures and legacy callers)."""
        from api.server.sql_repo import token_hash, ts

        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        with self.repo._write(durable=True) as conn:
            person = self._person(conn, name)
            if person is None:
                if same_person:
                    raise NoSuchPerson(name)
                if same_person is False:
                    name = check_new_name(name)
                    self._refuse_lookalike(conn, name)
                person = Person(secrets.token_hex(12), name, now)
                self.repo._x(
                    conn,
                    "INSERT INTO people (person_id, name, created_at) VALUES (?, ?, ?)",
                    (person.person_id, person.name, ts(now)),
                )
            elif same_person is False:
                raise PersonExists(person, self._live_tokens(conn, person.person_id, ts(now)))
            self.repo._x(
                conn,
                "INSERT INTO tokens (token_sha256, name, role, created_at, person_id, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    token_hash(token),
                    person.name,
                    Role(role).value,
                    ts(now),
                    person.person_id,
                    None if expires_at is None else ts(expires_at),
                ),
            )
        return token, person

    def _refuse_lookalike(self, conn: Any, name: str) -> None:
        key = name_key(name)
        for (other,) in self.repo._x(conn, "SELECT name FROM people").fetchall():
            if name_key(other) == key:
                raise NameRefused(
                    f"too close to the existing person {other!r} (names must differ by more"
                    " than case or width); choose another name, or give the existing name"
                    " exactly with --same-person"
                )

    def _live_tokens(self, conn: Any, person_id: str, t_now: float) -> int:
        row = self.repo._one(
            conn,
            "SELECT COUNT(*) FROM tokens WHERE person_id = ? AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (person_id, t_now),
        )
        return int(row[0])

    def people(self) -> list[Person]:
        """Every person, oldest first."""
        with self.repo._read() as conn:
            rows = self.repo._x(
                conn, "SELECT person_id, name, created_at FROM people ORDER BY created_at, name"
            ).fetchall()
        return [Person(r[0], r[1], parse_time(r[2]) or datetime.now(UTC)) for r in rows]

    def tokens(self) -> list[TokenInfo]:
        """Every token (live, expired and revoked), by person then age; never the hash."""
        with self.repo._read() as conn:
            rows = self.repo._x(
                conn,
                "SELECT person_id, name, role, created_at, expires_at, revoked_at FROM tokens"
                " ORDER BY name, created_at",
            ).fetchall()
        return [
            TokenInfo(
                person_id=r[0],
                name=r[1],
                role=Role(r[2]),
                created_at=parse_time(r[3]) or datetime.now(UTC),
                expires_at=parse_time(r[4]),
                revoked_at=parse_time(r[5]),
            )
            for r in rows
        ]
