"""Issue 10 finding 3: tokens belong to people; names are unique and validated; `token list`,
`--expires`; failed authentication counted, logged without the token and slowed per source
address (429 + Retry-After). Real servers on loopback and the real commands, both backends."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from api.models import Role
from api.server.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from api.server.people_store import PeopleStore
from tests.fixtures.server import ClockedServer, LiveServer, open_repo, run_annotator


@pytest.fixture
def db(new_db_url: Callable[[Path], str], tmp_path: Path) -> tuple[str, Path]:
    """A fresh queue database of the current backend (no server needed for `token`)."""
    return new_db_url(tmp_path / "db"), tmp_path / "data"


def _cli(
    db: tuple[str, Path], *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`annotator token ARGS` in this process (the real parser and command function)."""
    from annotator.cli import _HANDLERS, build_parser

    parsed = build_parser().parse_args(["token", *args, "--db", db[0], "--data", str(db[1])])
    module, func = _HANDLERS[parsed.handler].split(":")
    code = getattr(__import__(module, fromlist=[func]), func)(parsed)
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_a_name_is_one_person_and_a_second_token_needs_saying_so(
    db: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, err = _cli(db, "create", "Grace Hopper", capsys=capsys)
    assert code == 0 and "person " in err
    # The real command as a process: refused, nothing on stdout, the fix named.
    done = run_annotator("token", "create", "Grace Hopper", "--db", db[0], home=tmp_path)
    err = " ".join(done.stderr.split())
    assert done.returncode == 2 and done.stdout == "", err
    assert "already a person" in err and "--same-person" in err and "Traceback" not in err
    code, second, err = _cli(
        db, "create", "Grace Hopper", "--same-person", "--role", "supervisor", capsys=capsys
    )
    assert code == 0, err
    code, _, err = _cli(db, "create", "Nobody Yet", "--same-person", capsys=capsys)
    assert code == 2 and "nobody is called" in err
    repo = open_repo(db[0], db[1])
    try:
        a = repo.principal_for_token(first.strip())
        b = repo.principal_for_token(second.strip())
    finally:
        repo.close()
    assert a.person_id == b.person_id and a.name == b.name == "Grace Hopper"
    assert (a.role, b.role) == (Role.ANNOTATOR, Role.SUPERVISOR)


NAMES_REFUSED = [
    ("grace hopper", "too close to the existing person"),
    ("ＧＲＡＣＥ ＨＯＰＰＥＲ", "too close to the existing person"),
    ("Grace\u202eHopper", "NAME"),  # RTL override: the DisplayName rule
    ("Grace  Hopper", "single spaces"),
    ("Grаce", "mixes CYRILLIC and LATIN"),  # a Cyrillic а
    ("_grace", "start the name with a letter or a digit"),
    ("grace;rm", "is not allowed"),
    ("g" * 65, "NAME"),
]


def test_names_are_validated_and_lookalikes_refused(
    db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(db, "create", "Grace Hopper", capsys=capsys)[0] == 0
    for name, why in NAMES_REFUSED:
        code, out, err = _cli(db, "create", name, capsys=capsys)
        assert code == 2 and out == "", (name, err)
        assert why in err, (name, err)
        assert "\u202e" not in err and "\x1b" not in err
    for fine in ("José Ñúñez", "李小龍", "o'brien-smith", "kim.lee@site 2"):
        assert _cli(db, "create", fine, capsys=capsys)[0] == 0, fine


def test_token_list_shows_people_roles_and_times_but_never_a_token(
    db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, ada, _ = _cli(db, "create", "Ada", "--expires", "30d", capsys=capsys)
    _, kim, _ = _cli(db, "create", "Kim", "--role", "supervisor", capsys=capsys)
    assert _cli(db, "revoke", "Kim", capsys=capsys)[0] == 0
    code, out, err = _cli(db, "list", capsys=capsys)
    assert code == 0, err
    header, *rest = out.splitlines()
    assert header.split() == ["PERSON", "PERSON", "ID", "ROLE", "CREATED", "EXPIRES", "STATE"]
    lines = {line.split()[0]: line for line in rest}
    soon = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert soon in lines["Ada"] and lines["Ada"].endswith("live")
    assert "supervisor" in lines["Kim"] and "revoked" in lines["Kim"]
    for token in (ada.strip(), kim.strip()):
        assert token not in out + err
        assert hashlib.sha256(token.encode()).hexdigest() not in out + err


def test_expires_must_be_a_future_time_it_understands(
    db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("yesterday", "2020-01-01", "0d", "999w"):
        code, out, err = _cli(db, "create", "Lee", "--expires", bad, capsys=capsys)
        assert code == 2 and out == "" and "--expires" in err, (bad, err)


def test_an_expired_token_stops_working_even_while_cached(
    clocked_server: ClockedServer,
) -> None:
    token, _ = PeopleStore(clocked_server.repo).create_token(
        "eve", Role.ANNOTATOR, expires_at=clocked_server.clock.now() + timedelta(seconds=60)
    )
    with clocked_server.client(token) as http:
        assert http.get("/v1/me/stats").status_code == 200
        clocked_server.clock.advance(61)
        r = http.get("/v1/me/stats")
    assert r.status_code == 401 and r.json()["reason"] == "bad_token"


def test_failed_logins_are_counted_logged_without_the_token_and_slowed_per_address(
    make_live_server: Callable[..., LiveServer],
) -> None:
    server = make_live_server("--auth-failure-limit", "5")
    good = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.annotator_token}"}
    )
    assert good.get("/v1/me/stats").status_code == 200  # accepted before the storm
    guesses = [f"guess-{i}-{'x' * 30}" for i in range(8)]
    answers = []
    with httpx.Client(base_url=server.url) as http:
        for guess in guesses:
            r = http.get("/v1/me/stats", headers={"Authorization": f"Bearer {guess}"})
            answers.append(r)
        fresh = server.new_token("newcomer")
        late = http.get("/v1/me/stats", headers={"Authorization": f"Bearer {fresh}"})
    assert [r.status_code for r in answers] == [401] * 5 + [429] * 3
    limited = answers[-1]
    assert limited.json()["reason"] == "too_many_failed_logins"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert good.get("/v1/me/stats").status_code == 200  # a token already accepted still works
    good.close()
    assert late.status_code == 429  # an unseen token from the throttled address waits too
    # Another source address is not slowed by this one's failures.
    other = httpx.Client(
        base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    )
    with other:
        assert (
            other.get("/v1/me/stats", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        assert (
            other.get("/v1/me/stats", headers={"Authorization": f"Bearer {fresh}"}).status_code
            == 200
        )
    time.sleep(0.2)
    log = server.log_path.read_text()
    assert "authentication failed from 127.0.0.1 (5 in the last 60 s)" in log
    assert "authentication failed from 127.0.0.2 (1 in the last 60 s)" in log
    for guess in guesses:
        assert guess not in log and guess[:12] not in log


def _old_database(backend: str, url: str) -> None:
    """A database at the schema before the people migration, with tokens the old way: two of
    them named "ann" (one person, as the old server treated them) and one "bob"."""
    index = next(i for i, m in enumerate(SQLITE_MIGRATIONS) if "CREATE TABLE people" in m)
    rows = [
        (hashlib.sha256(t.encode()).hexdigest(), name, "annotator", 1.0e9 + i)
        for i, (t, name) in enumerate([("tok-a1", "ann"), ("tok-a2", "ann"), ("tok-b", "bob")])
    ]
    if backend == "sqlite":
        from api.server.sqlite_repo import _statements

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for version, script in enumerate(SQLITE_MIGRATIONS[:index], start=1):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.executemany(
            "INSERT INTO tokens (token_sha256, name, role, created_at) VALUES (?, ?, ?, ?)", rows
        )
        conn.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for version, script in enumerate(POSTGRES_MIGRATIONS[:index], start=1):
            conn.execute(script)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tokens (token_sha256, name, role, created_at) VALUES (%s, %s, %s, %s)",
                rows,
            )


def test_the_migration_makes_one_person_per_name_and_old_tokens_keep_working(
    backend: str, new_db_url: Callable[[Path], str], tmp_path: Path
) -> None:
    url = new_db_url(tmp_path / "old")
    _old_database(backend, url)
    repo = open_repo(url, tmp_path / "data")
    try:
        a1, a2, b = (repo.principal_for_token(t) for t in ("tok-a1", "tok-a2", "tok-b"))
        people = PeopleStore(repo).people()
        tokens = PeopleStore(repo).tokens()
    finally:
        repo.close()
    assert sorted(p.name for p in people) == ["ann", "bob"]
    assert a1.person_id == a2.person_id != b.person_id
    assert {t.person_id for t in tokens} == {p.person_id for p in people}
    assert a1.name == "ann" and b.name == "bob"
