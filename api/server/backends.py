"""Which `Repository` a database URL names: `sqlite:///path` (or a bare path) or
`postgresql://...` (`postgres://` too), and the one error every command reports when it cannot
be opened.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from api.server.repository import Repository

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


class CannotOpen(Exception):
    """The database cannot be opened: the message names it (no password) and the fix."""


def normalize_url(value: str) -> str:
    """A `--db` value as a URL: URLs pass through, a path becomes `sqlite:///<absolute path>`."""
    if value.startswith(POSTGRES_PREFIXES) or value.startswith(SQLITE_PREFIX):
        return value
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise CannotOpen(
            f"--db: unknown database scheme {scheme!r}: give sqlite:///PATH, a file path,"
            " or postgresql://USER@HOST/DB"
        )
    return SQLITE_PREFIX + str(Path(value).expanduser().resolve())


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_PREFIXES)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix(SQLITE_PREFIX))


def shown(url: str) -> str:
    """`url` fit for a message: PostgreSQL URLs lose their password."""
    if is_postgres(url):
        from api.server.postgres_repo import redact

        return redact(url)
    return url


def open_repository(
    url: str,
    data_dir: Path,
    *,
    annotations_per_clip: int | None = None,
    migrate: bool = True,
) -> Repository:
    """The repository for `url`. `data_dir` holds SQLite's audio files (PostgreSQL keeps audio in
    the database). `migrate=False` refuses a database whose schema is not current instead of
    upgrading it. Raises `CannotOpen`."""
    if is_postgres(url):
        import psycopg

        from api.server.postgres_repo import DatabaseUnavailable, PostgresRepository

        try:
            return PostgresRepository(
                url, annotations_per_clip=annotations_per_clip, migrate=migrate
            )
        except (DatabaseUnavailable, psycopg.Error) as e:
            raise CannotOpen(
                f"cannot open the queue database {shown(url)}: {e} "
                "(is the server running, and the URL's user, host and database right?)"
            ) from None
    from api.server.sqlite_repo import NewerSchema, SqliteRepository

    path = sqlite_path(url)
    try:
        return SqliteRepository(
            path, data_dir, annotations_per_clip=annotations_per_clip, migrate=migrate
        )
    except (OSError, sqlite3.Error, NewerSchema) as e:
        raise CannotOpen(
            f"cannot open the queue database {path}: {e} "
            "(check the path and its permissions, or pass --db)"
        ) from None
