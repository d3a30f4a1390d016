"""Shared helpers for the security sweep: a world of real tokens, leases and annotations on a
real `annotator serve`, and a walker over the app's route table."""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.models import Role
from tests.fixtures.server import LiveServer

#: Roles as the matrix sees them: two kinds of unauthenticated caller, then the three real roles.
ROLES = ("none", "bad", "annotator", "supervisor", "admin")
REAL_ROLES = ("annotator", "supervisor", "admin")
#: A distinctive transcript for requests the matrix makes (the secrets test greps for its own).
TRANSCRIPT = "wake me up at seven"


def app_routes() -> set[tuple[str, str]]:
    """Every (METHOD, path) the real app answers, from `create_app(...).routes` (walking included
    routers) and from its OpenAPI document, so a route added either way is seen."""
    from api.server.app import create_app
    from api.server.settings import ServerSettings

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = create_app(ServerSettings(db_path=root / "q.db", data_dir=root / "data"))
        found = set(_walk(app.routes, ""))
        for path, item in app.openapi()["paths"].items():
            for method in item:
                found.add((method.upper(), path))
        app.state.service.repo.close()
    return found


def _walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x: an included router
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + str(getattr(context, "prefix", "") or ""))
            continue
        sub = getattr(route, "routes", None)  # a Mount
        if sub is not None and not hasattr(route, "methods"):
            yield from _walk(list(sub), prefix + str(getattr(route, "path", "")))
            continue
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is None or methods is None:
            raise AssertionError(
                f"route {route!r} has no path/methods: teach tests/security/support.py to walk it"
            )
        for method in methods:
            yield method, prefix + path


def random_id() -> str:
    """A well-formed id that no server has issued."""
    return secrets.token_urlsafe(12)


def key() -> str:
    return uuid.uuid4().hex


@dataclass
class World:
    """Real principals on one server: a token per role, plus "ann2", whose resources are the
    "someone else's" side of every cell."""

    server: LiveServer
    tokens: dict[str, str] = field(default_factory=dict)
    other_token: str = ""

    @classmethod
    def build(cls, server: LiveServer) -> World:
        world = cls(server)
        world.tokens = {
            "annotator": server.annotator_token,
            "supervisor": server.supervisor_token,
            "admin": server.admin_token,
            "bad": "zz-not-a-token-" + secrets.token_urlsafe(24),
        }
        world.other_token = server.new_token("ann2", Role.ANNOTATOR)
        return world

    def headers(self, role: str) -> dict[str, str]:
        if role == "none":
            return {}
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def http(self, token: str | None = None) -> httpx.Client:
        hdrs = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.server.url, headers=hdrs, timeout=10.0)

    def lease(self, token: str) -> dict[str, Any]:
        with self.http(token) as c:
            r = c.post("/v1/leases", json={"count": 1})
        assert r.status_code == 200, r.text
        leases = r.json()["leases"]
        assert leases, "the test queue ran dry: ingest more clips"
        return dict(leases[0])

    def annotation(self, token: str, transcript: str = TRANSCRIPT) -> dict[str, Any]:
        return self.annotation_with(token, transcript=transcript)

    def annotation_with(self, token: str, **fields: Any) -> dict[str, Any]:
        """A new annotation by `token`'s owner: the usual body with `fields` over it."""
        lease = self.lease(token)
        with self.http(token) as c:
            r = c.post(
                "/v1/annotations",
                json={**annotation_body(lease), **fields},
                headers={"Idempotency-Key": key()},
            )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def token_for(self, role: str) -> str:
        """Whose resources "own" means: for unauthenticated callers, a real annotator's."""
        return self.tokens[role] if role in REAL_ROLES else self.server.annotator_token


def annotation_body(lease: dict[str, Any], transcript: str = TRANSCRIPT) -> dict[str, Any]:
    return {
        "lease_id": lease["lease_id"],
        "fence": lease["fence"],
        "transcript": transcript,
        "intent": "alarm_set",
    }
