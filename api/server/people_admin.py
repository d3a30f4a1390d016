"""The admins' people-and-tokens view and token revoke (issue 11's admin routes, over issue 10's
`people`/`tokens` tables): what `GET /v1/admin/people` lists and `POST /v1/admin/people/
{person_id}/revoke` does.

A token is named by `token_id`, a one-way digest of its stored hash (which is itself a digest of
the secret): it identifies the row for a revoke and gives away nothing of the token. Revoking
goes through `SqlRepository.revoke_tokens`, the same path as `annotator token revoke`: it bumps
the token generation, which every server process polls, so the token stops working everywhere
within `service.TOKEN_GENERATION_CHECK_SECONDS`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from api.models import PersonInfo, Role, TokenInfo
from api.server.errors import not_found
from api.server.people_store import PeopleStore, Person, parse_time
from api.server.sql_repo import SqlRepository


def token_id(token_sha256: str) -> str:
    return hashlib.sha256(b"annotator-token-id\0" + token_sha256.encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class _Token:
    sha256: str
    info: TokenInfo


class PeopleAdmin:
    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo
        self.people_store = PeopleStore(repo)

    def _tokens(self, now: datetime) -> dict[str, list[_Token]]:
        """person name → their tokens, oldest first (the hash stays in this module)."""
        r = self.repo
        with r._read() as conn:
            rows = r._x(
                conn,
                "SELECT token_sha256, name, role, created_at, expires_at, revoked_at FROM tokens"
                " ORDER BY name, created_at",
            ).fetchall()
        out: dict[str, list[_Token]] = {}
        for sha, name, role, created, expires, revoked in rows:
            expires_at, revoked_at = parse_time(expires), parse_time(revoked)
            state = (
                "revoked"
                if revoked_at is not None
                else "expired"
                if expires_at is not None and expires_at <= now
                else "live"
            )
            info = TokenInfo(
                name=name,
                role=Role(role),
                created_at=parse_time(created) or now,
                revoked_at=revoked_at,
                token_id=token_id(sha),
                expires_at=expires_at,
                state=state,
            )
            out.setdefault(name, []).append(_Token(sha, info))
        return out

    def people(
        self,
        now: datetime,
        annotations: dict[str, tuple[int, datetime]],
        leases: dict[str, int],
    ) -> list[PersonInfo]:
        """Everyone in `people` (and any older token name without a person row), by name."""
        tokens = self._tokens(now)
        persons = {p.name: p for p in self.people_store.people()}
        return [
            self._info(
                persons.get(name), name, [t.info for t in tokens.get(name, [])], annotations, leases
            )
            for name in sorted(set(persons) | set(tokens))
        ]

    @staticmethod
    def _info(
        person: Person | None,
        name: str,
        held: list[TokenInfo],
        annotations: dict[str, tuple[int, datetime]],
        leases: dict[str, int],
    ) -> PersonInfo:
        live = [t for t in held if t.state == "live"]
        roles = sorted({t.role for t in (live or held)}, key=list(Role).index)
        count, last = annotations.get(name, (0, None))
        return PersonInfo(
            name=name,
            person_id=person.person_id if person else None,
            created_at=person.created_at if person else None,
            roles=roles,
            live_tokens=len(live),
            tokens=held,
            annotations=count,
            last_annotation_at=last,
            live_leases=leases.get(name, 0),
        )

    def person(self, person_id: str) -> Person:
        for p in self.people_store.people():
            if p.person_id == person_id:
                return p
        raise not_found("person")

    def revoke(self, person_id: str, only: str | None, now: datetime) -> tuple[Person, int]:
        """Revoke the person's token `only` (a `token_id`), or all their live tokens; (the
        person, how many were revoked). 404 for an unknown person or token id."""
        person = self.person(person_id)
        held = self._tokens(now).get(person.name, [])
        sha: str | None = None
        if only is not None:
            match = [t for t in held if t.info.token_id == only]
            if not match:
                raise not_found("token")
            if match[0].info.revoked_at is not None:
                return person, 0
            sha = match[0].sha256
        return person, self.repo.revoke_tokens(person.name, only_sha256=sha)
