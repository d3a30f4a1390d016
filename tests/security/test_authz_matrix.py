"""The authorization matrix: every route × every role × own / someone else's / nonexistent resource.

The table below is checked against the app's route table (`create_app(...).routes`, walking
included routers, plus /openapi.json): a route nobody wrote an expectation for fails
`test_every_route_has_an_expectation`, so a new route cannot skip the matrix.

Roles: `none` (no Authorization header), `bad` (a well-formed but unknown bearer token), and the
three real roles. For routes that act on a lease or an annotation there are scenarios:
- `own`: the caller's own live lease / annotation (for `none`/`bad`: `real`, someone's real one,
  so a 401 is shown to come before any lookup);
- `other`: a live lease / annotation of another annotator ("ann2");
- `missing`: a well-formed id the server never issued.

What the server answers (api/server/rules.py `own_lease` and `require_author`):
someone else's lease or annotation → 404, exactly as an id the server never issued (issue 10,
finding 9): a 403 would tell a caller that a leaked or guessed id is real (an existence oracle).

Every request is real, over loopback, against `annotator serve`, with real tokens and leases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.support import (
    REAL_ROLES,
    ROLES,
    World,
    annotation_body,
    app_routes,
    key,
    random_id,
)

Route = tuple[str, str]
Cell = tuple[str, str]  # (role, scenario)

MATRIX_FILE = "tests/security/test_authz_matrix.py (EXPECTATIONS and BUILDERS)"


# ---------------------------------------------------------------- the expectation table


def _public(status: int = 200) -> dict[Cell, int]:
    return {(role, "-"): status for role in ROLES}


def _authed(annotator: int, supervisor: int, admin: int) -> dict[Cell, int]:
    by_role = {"annotator": annotator, "supervisor": supervisor, "admin": admin}
    return {(role, "-"): by_role.get(role, 401) for role in ROLES}


def _owned(own: int, other: int = 404, missing: int = 404) -> dict[Cell, int]:
    table: dict[Cell, int] = {}
    for role in ("none", "bad"):
        table[(role, "real")] = 401
        table[(role, "missing")] = 401
    for role in REAL_ROLES:
        table[(role, "own")] = own
        table[(role, "other")] = other
        table[(role, "missing")] = missing
    return table


def _escalated(found: int) -> dict[Cell, int]:
    """Escalation routes: `escalated` a real escalation, `plain` a clip nobody escalated (its
    annotation's id in escalation form), `missing` an id never issued. Annotators are refused
    before any lookup."""
    table: dict[Cell, int] = {}
    for role in ("none", "bad"):
        table[(role, "real")] = 401
        table[(role, "missing")] = 401
    for scenario in ("escalated", "plain", "missing"):
        table[("annotator", scenario)] = 403
        for role in ("supervisor", "admin"):
            table[(role, scenario)] = found if scenario == "escalated" else 404
    return table


#: (METHOD, path) → {(role, scenario): expected status}. For the batch route the status is the
#: per-item `status_code` (the envelope is 200 whenever the caller is authenticated).
EXPECTATIONS: dict[Route, dict[Cell, int]] = {
    ("GET", "/v1/health"): _public(),
    ("GET", "/v1/taxonomy"): _authed(200, 200, 200),
    ("POST", "/v1/leases"): _authed(200, 200, 200),
    ("POST", "/v1/leases/{lease_id}/renew"): _owned(200),
    ("POST", "/v1/leases/{lease_id}/release"): _owned(204),
    ("GET", "/v1/leases/{lease_id}/audio"): _owned(200),
    ("POST", "/v1/annotations"): _owned(201),
    ("POST", "/v1/annotations/batch"): _owned(201),
    ("PATCH", "/v1/annotations/{annotation_id}"): _owned(200),
    ("GET", "/v1/me/stats"): _authed(200, 200, 200),
    ("GET", "/v1/escalations"): _authed(403, 200, 200),
    ("GET", "/v1/export"): _authed(403, 403, 200),
    # Quality (issue 12): the reviewer role's routes (supervisors and admins have it; the
    # reviewer role itself is tested in tests/server/test_quality.py). Nothing is waiting for
    # review in the matrix's world, so a clip id answers 404 and the list is empty.
    ("GET", "/v1/reviews"): _authed(403, 200, 200),
    ("GET", "/v1/reviews/{clip_id}"): _authed(403, 404, 404),
    ("GET", "/v1/reviews/{clip_id}/audio"): _authed(403, 404, 404),
    ("POST", "/v1/reviews/{clip_id}/final"): _authed(403, 404, 404),
    ("GET", "/v1/quality/report"): _authed(403, 200, 200),
    ("GET", "/v1/me/welfare"): _authed(200, 200, 200),
    ("PUT", "/v1/me/opt-outs"): _authed(200, 200, 200),
    ("PUT", "/v1/admin/people/{person}/opt-outs"): _authed(403, 200, 200),
    ("GET", "/v1/admin/exposure"): _authed(403, 200, 200),
    ("GET", "/v1/escalations/{escalation_id}"): _escalated(200),
    ("POST", "/v1/escalations/{escalation_id}/ack"): _escalated(200),
    ("POST", "/v1/escalations/{escalation_id}/resolve"): _escalated(200),
    ("POST", "/v1/escalations/{escalation_id}/reopen"): _escalated(200),
    # A supervisor hears an escalated clip while it is not resolved; never any other clip.
    ("GET", "/v1/escalations/{escalation_id}/audio"): {
        **_escalated(200),
        **{(role, "resolved"): 410 for role in ("supervisor", "admin")},
        ("annotator", "resolved"): 403,
    },
    ("GET", "/v1/admin/queue"): _authed(403, 403, 200),
    ("GET", "/v1/admin/people"): _authed(403, 403, 200),
    ("POST", "/v1/admin/people/{person_id}/revoke"): _authed(403, 403, 200),
    ("GET", "/v1/admin/throughput"): _authed(403, 403, 200),
    # FastAPI's documentation routes are public: they describe the API, never data.
    ("GET", "/openapi.json"): _public(),
    ("HEAD", "/openapi.json"): _public(),
    ("GET", "/docs"): _public(),
    ("HEAD", "/docs"): _public(),
    ("GET", "/docs/oauth2-redirect"): _public(),
    ("HEAD", "/docs/oauth2-redirect"): _public(),
    ("GET", "/redoc"): _public(),
    ("HEAD", "/redoc"): _public(),
}


# ---------------------------------------------------------------- how to make each request


@dataclass
class Prepared:
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    #: Read the status from the first batch item instead of the envelope.
    batch: bool = False
    #: Run after the request: proves a refused request changed nothing for the resource's owner.
    after: Callable[[], None] | None = None


Builder = Callable[[World, str, str], Prepared]


def _lease_for(world: World, role: str, scenario: str) -> tuple[dict[str, Any], str | None]:
    """(lease, its owner's token) for a cell; a fresh live lease every time."""
    if scenario == "missing":
        return {"lease_id": random_id(), "fence": 1}, None
    owner = world.tokens[role] if scenario == "own" else world.other_token
    return world.lease(owner), owner


def _still_renewable(world: World, lease: dict[str, Any], owner: str | None) -> Callable[[], None]:
    def check() -> None:
        if owner is None:
            return
        with world.http(owner) as c:
            r = c.post(f"/v1/leases/{lease['lease_id']}/renew", json={})
        assert r.status_code == 200, f"the owner's lease was disturbed: {r.status_code} {r.text}"

    return check


def _still_submittable(
    world: World, lease: dict[str, Any], owner: str | None
) -> Callable[[], None]:
    def check() -> None:
        if owner is None:
            return
        with world.http(owner) as c:
            r = c.post(
                "/v1/annotations",
                json=annotation_body(lease, "the owner's own words"),
                headers={"Idempotency-Key": key()},
            )
        assert r.status_code == 201, f"the owner lost the clip: {r.status_code} {r.text}"

    return check


def _simple(method: str, url: str) -> Builder:
    return lambda world, role, scenario: Prepared(method, url)


def _lease_route(method: str, suffix: str, body: dict[str, Any] | None) -> Builder:
    def build(world: World, role: str, scenario: str) -> Prepared:
        lease, owner = _lease_for(world, role, scenario)
        return Prepared(
            method,
            f"/v1/leases/{lease['lease_id']}/{suffix}",
            body,
            after=_still_renewable(world, lease, owner) if scenario != "own" else None,
        )

    return build


def _submit(world: World, role: str, scenario: str) -> Prepared:
    lease, owner = _lease_for(world, role, scenario)
    return Prepared(
        "POST",
        "/v1/annotations",
        annotation_body(lease),
        headers={"Idempotency-Key": key()},
        after=_still_submittable(world, lease, owner) if scenario != "own" else None,
    )


def _batch(world: World, role: str, scenario: str) -> Prepared:
    lease, owner = _lease_for(world, role, scenario)
    item = {"idempotency_key": key(), "annotation": annotation_body(lease)}
    return Prepared(
        "POST",
        "/v1/annotations/batch",
        {"items": [item]},
        batch=True,
        after=_still_submittable(world, lease, owner) if scenario != "own" else None,
    )


def _amend(world: World, role: str, scenario: str) -> Prepared:
    if scenario == "missing":
        return Prepared("PATCH", f"/v1/annotations/{random_id()}", {"transcript": "changed"})
    owner = world.tokens[role] if scenario == "own" else world.other_token
    made = world.annotation(owner)
    annotation_id = made["annotation_id"]

    def unchanged() -> None:
        with world.http(owner) as c:
            r = c.patch(f"/v1/annotations/{annotation_id}", json={})
        assert r.status_code == 200, r.text
        assert r.json()["transcript"] != "changed", "someone else amended this annotation"

    return Prepared(
        "PATCH",
        f"/v1/annotations/{annotation_id}",
        {"transcript": "changed"},
        after=unchanged if scenario != "own" else None,
    )


def _make_escalation(world: World, state: str = "open") -> str:
    """A new escalation raised by ann2 (resolved first when `state` says so); its id."""
    made = world.annotation_with(world.other_token, flags=["distress"], note="a scream")
    eid = "a_" + made["annotation_id"]
    if state == "resolved":
        with world.http(world.tokens["supervisor"]) as c:
            r = c.post(
                f"/v1/escalations/{eid}/resolve", json={"outcome": "false_alarm", "note": "n"}
            )
        assert r.status_code == 200, r.text
    return eid


def _escalation_route(method: str, suffix: str, body: dict[str, Any] | None) -> Builder:
    """Every cell that needs a real escalation gets a fresh one (a transition changes it); an
    annotator's refused request must leave it exactly as it was."""
    before = "resolved" if suffix == "/reopen" else "open"

    def build(world: World, role: str, scenario: str) -> Prepared:
        if scenario == "missing":
            eid = "a_" + random_id()
        elif scenario == "plain":
            eid = "a_" + world.annotation(world.other_token)["annotation_id"]
        else:
            eid = _make_escalation(world, "resolved" if scenario == "resolved" else before)

        def unchanged() -> None:
            with world.http(world.tokens["supervisor"]) as c:
                r = c.get(f"/v1/escalations/{eid}")
            assert r.status_code == 200, r.text
            audit = r.json()["audit"]
            assert [a["action"] for a in audit] == (["resolve"] if before != "open" else []), (
                "a refused request changed the escalation"
            )

        refused = role in ("annotator", "none", "bad") and scenario in ("escalated", "real")
        return Prepared(
            method, f"/v1/escalations/{eid}{suffix}", body, after=unchanged if refused else None
        )

    return build


def _revoke(world: World, role: str) -> Prepared:
    """Revoke a fresh person's tokens; a refused request must leave their token working."""
    name = f"victim-{random_id()[:12]}"
    token = world.server.new_token(name)
    with world.http(world.tokens["admin"]) as c:
        r = c.get("/v1/admin/people")
    assert r.status_code == 200, r.text
    [person_id] = [p["person_id"] for p in r.json()["people"] if p["name"] == name]

    def still_works() -> None:
        with world.http(token) as c:
            r = c.get("/v1/me/stats")
        assert r.status_code == 200, "a refused revoke revoked the token"

    refused = role != "admin"
    return Prepared(
        "POST",
        f"/v1/admin/people/{person_id}/revoke",
        {},
        after=still_works if refused else None,
    )


BUILDERS: dict[Route, Builder] = {
    ("GET", "/v1/health"): _simple("GET", "/v1/health"),
    ("GET", "/v1/taxonomy"): _simple("GET", "/v1/taxonomy"),
    ("POST", "/v1/leases"): lambda w, r, s: Prepared("POST", "/v1/leases", {"count": 1}),
    ("POST", "/v1/leases/{lease_id}/renew"): _lease_route("POST", "renew", {}),
    ("POST", "/v1/leases/{lease_id}/release"): _lease_route(
        "POST", "release", {"reason": "skipped"}
    ),
    ("GET", "/v1/leases/{lease_id}/audio"): _lease_route("GET", "audio", None),
    ("POST", "/v1/annotations"): _submit,
    ("POST", "/v1/annotations/batch"): _batch,
    ("PATCH", "/v1/annotations/{annotation_id}"): _amend,
    ("GET", "/v1/me/stats"): _simple("GET", "/v1/me/stats"),
    ("GET", "/v1/escalations"): _simple("GET", "/v1/escalations"),
    ("GET", "/v1/export"): _simple("GET", "/v1/export"),
    ("GET", "/v1/reviews"): _simple("GET", "/v1/reviews"),
    ("GET", "/v1/reviews/{clip_id}"): lambda w, r, s: Prepared("GET", f"/v1/reviews/{random_id()}"),
    ("GET", "/v1/reviews/{clip_id}/audio"): lambda w, r, s: Prepared(
        "GET", f"/v1/reviews/{random_id()}/audio"
    ),
    ("POST", "/v1/reviews/{clip_id}/final"): lambda w, r, s: Prepared(
        "POST",
        f"/v1/reviews/{random_id()}/final",
        {"transcript": "wake me up at seven", "intent": "alarm_set"},
    ),
    ("GET", "/v1/quality/report"): _simple("GET", "/v1/quality/report"),
    ("GET", "/v1/me/welfare"): _simple("GET", "/v1/me/welfare"),
    ("PUT", "/v1/me/opt-outs"): lambda w, r, s: Prepared(
        "PUT", "/v1/me/opt-outs", {"categories": []}
    ),
    ("PUT", "/v1/admin/people/{person}/opt-outs"): lambda w, r, s: Prepared(
        "PUT", "/v1/admin/people/ann2/opt-outs", {"categories": []}
    ),
    ("GET", "/v1/admin/exposure"): _simple("GET", "/v1/admin/exposure"),
    ("GET", "/v1/escalations/{escalation_id}"): _escalation_route("GET", "", None),
    ("POST", "/v1/escalations/{escalation_id}/ack"): _escalation_route("POST", "/ack", {}),
    ("POST", "/v1/escalations/{escalation_id}/resolve"): _escalation_route(
        "POST", "/resolve", {"outcome": "no_action_needed", "note": "heard it"}
    ),
    ("POST", "/v1/escalations/{escalation_id}/reopen"): _escalation_route("POST", "/reopen", {}),
    ("GET", "/v1/escalations/{escalation_id}/audio"): _escalation_route("GET", "/audio", None),
    ("GET", "/v1/admin/queue"): _simple("GET", "/v1/admin/queue"),
    ("GET", "/v1/admin/people"): _simple("GET", "/v1/admin/people"),
    ("POST", "/v1/admin/people/{person_id}/revoke"): lambda w, r, s: _revoke(w, r),
    ("GET", "/v1/admin/throughput"): _simple("GET", "/v1/admin/throughput"),
    **{
        (method, path): _simple(method, path)
        for method in ("GET", "HEAD")
        for path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
    },
}

CELLS = [
    (route, role, scenario, status)
    for route, table in EXPECTATIONS.items()
    for (role, scenario), status in table.items()
]


# ---------------------------------------------------------------- tests


def test_every_route_has_an_expectation() -> None:
    routes = app_routes()
    assert routes, "found no routes at all: the route walker is broken"
    for method, path in sorted(routes):
        assert (method, path) in EXPECTATIONS, (
            f"route {method} {path} has no authorization expectation: add it to {MATRIX_FILE}"
        )
        assert (method, path) in BUILDERS, (
            f"route {method} {path} has no request builder: add it to {MATRIX_FILE}"
        )
    stale = set(EXPECTATIONS) - routes
    assert not stale, f"expectations for routes the app no longer has: {sorted(stale)}"


def test_every_role_appears_for_every_route() -> None:
    for route, table in EXPECTATIONS.items():
        assert {role for role, _ in table} == set(ROLES), route


def _send(world: World, prepared: Prepared, role: str) -> httpx.Response:
    headers = {**world.headers(role), **(prepared.headers or {})}
    with world.http() as c:
        return c.request(prepared.method, prepared.url, json=prepared.body, headers=headers)


@pytest.mark.parametrize(
    ("route", "role", "scenario", "expected"),
    CELLS,
    ids=[f"{m} {p} | {role} | {sc}" for (m, p), role, sc, _ in CELLS],
)
def test_cell(world: World, route: Route, role: str, scenario: str, expected: int) -> None:
    prepared = BUILDERS[route](world, role, scenario)
    r = _send(world, prepared, role)
    status = r.status_code
    if prepared.batch and status == 200:
        results = r.json()["results"]
        assert len(results) == 1, r.text
        status = results[0]["status_code"]
    assert status == expected, (
        f"{route[0]} {route[1]} as {role} ({scenario}): expected {expected}, got {status}: "
        f"{r.text[:300]}"
    )
    if r.status_code >= 400 and route[0] != "HEAD":
        assert set(r.json()) == {"reason", "message", "field"}, r.text
    if r.status_code == 401:
        assert r.headers.get("WWW-Authenticate") == "Bearer"
    if prepared.after is not None:
        prepared.after()


@pytest.mark.parametrize(
    "route", [route for route, table in EXPECTATIONS.items() if ("bad", "real") in table]
)
def test_unauthenticated_answer_is_the_same_for_real_and_missing_ids(
    world: World, route: Route
) -> None:
    """Without a valid token, a real resource id and a random one get byte-identical answers."""
    for role in ("none", "bad"):
        real = _send(world, BUILDERS[route](world, role, "real"), role)
        missing = _send(world, BUILDERS[route](world, role, "missing"), role)
        assert real.status_code == missing.status_code == 401
        assert real.content == missing.content


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic YW5uMTpwYXNzd29yZA==",
        "Bearer",
        "Token {token}",
        "{token}",
        "Bearer {token}x",
        "Bearer x{token}",
        "Bearer {token} {token}",
    ],
)
def test_malformed_authorization_headers_are_401(world: World, authorization: str) -> None:
    value = authorization.format(token=world.tokens["annotator"])
    with world.http() as c:
        r = c.get("/v1/me/stats", headers={"Authorization": value})
    assert r.status_code == 401, r.text
    assert r.json()["reason"] in {"missing_token", "bad_token"}


def test_lowercase_bearer_scheme_is_accepted(world: World) -> None:
    """RFC 7235: the auth scheme is case-insensitive; a working token must not depend on it."""
    with world.http() as c:
        r = c.get("/v1/me/stats", headers={"Authorization": f"bearer {world.tokens['annotator']}"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/v1/leases"),
        ("POST", "/v1/annotations"),
        ("POST", "/v1/leases/abc123/renew"),
        ("PATCH", "/v1/annotations/abc123"),
    ],
)
@pytest.mark.parametrize("role", ["none", "bad"])
def test_unauthenticated_malformed_body_is_refused_before_parsing(
    world: World, method: str, url: str, role: str
) -> None:
    """A caller without a valid token learns nothing about the body rules: 401, not 422.

    (A well-formed but invalid body already gets 401; only unparseable JSON slipped through.)
    """
    headers = {**world.headers(role), "Content-Type": "application/json"}
    with world.http() as c:
        r = c.request(method, url, content=b"{not json", headers=headers)
    assert r.status_code == 401, (
        f"{method} {url} as {role}: expected 401 before the body is parsed, got "
        f"{r.status_code} {r.text}"
    )
