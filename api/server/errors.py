"""The one exception the storage layer and the routes raise to refuse a request.

It carries the HTTP status and the machine-readable `reason` of `api.models.ErrorBody`, so the
repository can say *why* (a stale fence, a clip completed by someone else) without knowing HTTP
beyond a status number, and the app turns it into the same JSON shape everywhere.
"""

from __future__ import annotations

from api.models import ErrorBody


class Rejection(Exception):
    def __init__(
        self,
        status_code: int,
        reason: str,
        message: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{status_code} {reason}: {message}")
        self.status_code = status_code
        self.reason = reason
        self.message = message
        self.field = field
        #: Extra response headers (Retry-After on a 429: auth throttling, a welfare break).
        self.headers = headers

    def body(self) -> ErrorBody:
        return ErrorBody(reason=self.reason, message=self.message, field=self.field)


def not_found(what: str) -> Rejection:
    return Rejection(404, f"{what}_not_found", f"no such {what.replace('_', ' ')}")
