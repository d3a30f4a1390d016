"""A pure httpx client for the queue API.

Transport failures and unexpected responses become this module's own exceptions, so callers (the
TUI's workers, the sync engine, the CLI) handle errors in one place and never see httpx types.
The client is synchronous on purpose: the TUI runs it in named thread workers and the sync engine in
its own thread, so a slow network can never stall the event loop.
"""

from __future__ import annotations

import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from api.models import (
    AckRequest,
    Annotation,
    AnnotationIn,
    AnnotationPatch,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    EscalationDetail,
    EscalationPage,
    EscalationState,
    Health,
    LeaseList,
    LeaseRequest,
    LeaseState,
    PeopleList,
    QueueStatus,
    Receipt,
    ReleaseReason,
    ReleaseRequest,
    RenewRequest,
    ReopenRequest,
    ResolveRequest,
    RevokeRequest,
    RevokeResult,
    Stats,
    Taxonomy,
    Throughput,
)
from api.welfare import ON_BREAK_REASON, ExposureReport, OptOuts, WelfareState

if TYPE_CHECKING:
    from api.quality_models import QualityReport

M = TypeVar("M", bound=BaseModel)

#: Audio larger than this is refused before it is read into memory (a 10-minute 48 kHz stereo WAV
#: is ~110 MB; assistant clips are seconds long).
MAX_AUDIO_BYTES = 64 * 1024 * 1024


class ApiError(Exception):
    """Base of everything this client raises."""


class OfflineError(ApiError):
    """The server could not be reached (DNS, refused, reset, timeout). Retry later."""


class InsecureServerError(ApiError):
    """Plain http:// to a non-loopback host without --insecure."""


class ProtocolError(ApiError):
    """The server answered with something that is not the contract (bad JSON, wrong shape)."""


class ServerError(ApiError):
    """A 5xx answer: the server is up but failing. Retry later."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"server error {status_code}: {message}")
        self.status_code = status_code


class RequestRejected(ApiError):
    """A 4xx answer, with the server's machine-readable reason."""

    def __init__(self, status_code: int, error: ErrorBody) -> None:
        where = f" ({error.field})" if error.field else ""
        super().__init__(f"{status_code} {error.reason}{where}: {error.message}")
        self.status_code = status_code
        self.error = error

    @property
    def reason(self) -> str:
        return self.error.reason


class Unauthorized(RequestRejected):
    """401: missing or unknown token."""


class Forbidden(RequestRejected):
    """403: the token's role may not do this, or the lease is someone else's."""


class NotFound(RequestRejected):
    """404."""


class Conflict(RequestRejected):
    """409: e.g. `completed_by_other` — someone completed the clip after this lease expired."""


class Gone(RequestRejected):
    """410: the lease expired or was released (audio, renew)."""


class OnBreak(RequestRejected):
    """429 `on_break`: a mandatory welfare break; no new clips for `retry_after_s` seconds."""

    def __init__(self, status_code: int, error: ErrorBody, retry_after_s: float) -> None:
        super().__init__(status_code, error)
        self.retry_after_s = retry_after_s


_BY_STATUS: dict[int, type[RequestRejected]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
}


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """A verifying TLS context for a private CA bundle (PEM); raises ApiError if unreadable."""
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as e:
        raise ApiError(f"cannot use the CA bundle {ca_bundle}: {e}") from e


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class QueueClient:
    """One annotator's connection to the queue server."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        verify: bool | str | ssl.SSLContext = True,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if urlsplit(base_url).scheme == "http" and not insecure and not is_loopback_url(base_url):
            raise InsecureServerError(
                f"refusing plain http:// to {urlsplit(base_url).hostname}: recordings and your "
                "token would cross the network unencrypted. Use https://, or pass --insecure "
                "if you must."
            )
        self.base_url = base_url.rstrip("/")
        # A private CA bundle's path becomes an SSLContext (httpx deprecates paths); callers that
        # make many clients pass one context, so the bundle is loaded once.
        verify_arg = tls_context(verify) if isinstance(verify, str) else verify
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "annotator"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            verify=verify_arg,
            transport=transport,
            follow_redirects=False,
        )

    # -- plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as e:
            raise OfflineError(f"the server did not answer in time ({type(e).__name__})") from e
        except (httpx.TransportError, OSError) as e:
            raise OfflineError(f"cannot reach {self.base_url}: {e}") from e

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        content = body.model_dump_json(exclude_none=True).encode() if body is not None else None
        hdrs = dict(headers or {})
        if content is not None:
            hdrs["Content-Type"] = "application/json"
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        with self._transport_errors():
            resp = self._http.request(
                method, path, content=content, headers=hdrs, params=params, **extra
            )
        self._raise_for_status(resp)
        return resp

    @staticmethod
    def _raise_for_status(resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        try:
            error = ErrorBody.model_validate_json(resp.content)
        except ValidationError:
            error = ErrorBody(
                reason=f"http_{resp.status_code}", message=resp.text[:200] or resp.reason_phrase
            )
        if resp.status_code >= 500:
            raise ServerError(resp.status_code, error.message)
        if error.reason == ON_BREAK_REASON:
            raise OnBreak(resp.status_code, error, _retry_after(resp))
        raise _BY_STATUS.get(resp.status_code, RequestRejected)(resp.status_code, error)

    @staticmethod
    def _body(model: type[M], **fields: Any) -> M:
        """A request body built here; what the server would refuse (422) is refused the same
        way before sending, so callers handle one exception type for both."""
        try:
            return model(**fields)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            error = ErrorBody(
                reason=str(first["type"]), message=f"{where}: {first['msg']}", field=where or None
            )
            raise RequestRejected(422, error) from None

    @staticmethod
    def _parse(model: type[M], resp: httpx.Response) -> M:
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as e:
            errors = e.errors()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
            msg = errors[0]["msg"] if errors else "invalid"
            raise ProtocolError(
                f"unexpected answer from the server for {model.__name__}"
                f"{' at ' + where if where else ''}: {msg}"
            ) from e

    # -- the API

    def health(self) -> Health:
        return self._parse(Health, self._request("GET", "/v1/health"))

    def taxonomy(self) -> Taxonomy:
        return self._parse(Taxonomy, self._request("GET", "/v1/taxonomy"))

    def lease(
        self, count: int = 1, ttl_seconds: int | None = None, idempotency_key: str | None = None
    ) -> LeaseList:
        """New leases. Send an `idempotency_key` (`new_idempotency_key()`) and reuse it for every
        retry of this request: a retry whose first answer was lost gets the leases that answer
        held (still live, same fences), not new ones stranded until they expire."""
        body = LeaseRequest(count=count, ttl_seconds=ttl_seconds)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._parse(
            LeaseList, self._request("POST", "/v1/leases", body=body, headers=headers)
        )

    def renew(self, lease_id: str, ttl_seconds: int | None = None) -> LeaseState:
        resp = self._request(
            "POST", f"/v1/leases/{lease_id}/renew", body=RenewRequest(ttl_seconds=ttl_seconds)
        )
        return self._parse(LeaseState, resp)

    def release(self, lease_id: str, reason: ReleaseReason, detail: str | None = None) -> None:
        self._request(
            "POST",
            f"/v1/leases/{lease_id}/release",
            body=ReleaseRequest(reason=reason, detail=detail),
        )

    def audio(self, lease_id: str) -> bytes:
        """The clip's encoded audio, exactly as ingested (verify it against `Clip.sha256`)."""
        return self.download_audio(f"/v1/leases/{lease_id}/audio")

    def download_audio(self, path: str) -> bytes:
        """Audio bytes from `path`, refused when larger than any clip should be."""
        with self._transport_errors(), self._http.stream("GET", path) as r:
            if r.status_code >= 400:
                r.read()
                self._raise_for_status(r)
            try:
                declared = int(r.headers.get("Content-Length") or 0)
            except ValueError:
                raise ProtocolError("the audio's Content-Length is not a number") from None
            if declared > MAX_AUDIO_BYTES:
                raise ProtocolError(f"audio of {declared} bytes is larger than any clip should be")
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > MAX_AUDIO_BYTES:
                    raise ProtocolError("audio larger than any clip should be")
                chunks.append(chunk)
            return b"".join(chunks)

    def submit(self, annotation: AnnotationIn, idempotency_key: str) -> Receipt:
        resp = self._request(
            "POST",
            "/v1/annotations",
            body=annotation,
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._parse(Receipt, resp)

    def submit_batch(self, items: list[BatchItem]) -> BatchResponse:
        resp = self._request("POST", "/v1/annotations/batch", body=BatchRequest(items=items))
        return self._parse(BatchResponse, resp)

    def amend(self, annotation_id: str, patch: AnnotationPatch) -> Annotation:
        resp = self._request("PATCH", f"/v1/annotations/{annotation_id}", body=patch)
        return self._parse(Annotation, resp)

    def my_stats(self) -> Stats:
        return self._parse(Stats, self._request("GET", "/v1/me/stats"))

    # -- supervisors (issue 11): escalations and their audit trail

    def escalations(
        self,
        *,
        state: EscalationState | list[EscalationState] | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
        wait: float = 0,
        limit: int | None = None,
    ) -> EscalationPage:
        """The escalations (overdue first, then by severity, oldest first). With `cursor` (from
        an earlier page) and `wait` > 0 this is a long-poll: the server answers as soon as
        anything changed since that page, or after `wait` seconds with the same cursor."""
        params: dict[str, Any] = {}
        if state is not None:
            states = [state] if isinstance(state, EscalationState) else state
            params["state"] = [s.value for s in states]
        if since is not None:
            params["since"] = since.isoformat()
        if cursor is not None:
            params["cursor"] = cursor
        if wait:
            params["wait"] = wait
        if limit is not None:
            params["limit"] = limit
        resp = self._request(
            "GET",
            "/v1/escalations",
            params=params,
            # The long-poll holds the request open for up to `wait` seconds by design.
            timeout=(self._http.timeout.read or 0.0) + wait if wait else None,
        )
        return self._parse(EscalationPage, resp)

    def escalation(self, escalation_id: str) -> EscalationDetail:
        """One escalation with its annotation, amend history and audit trail."""
        resp = self._request("GET", f"/v1/escalations/{escalation_id}")
        return self._parse(EscalationDetail, resp)

    def acknowledge(self, escalation_id: str, note: str | None = None) -> EscalationDetail:
        resp = self._request(
            "POST", f"/v1/escalations/{escalation_id}/ack", body=self._body(AckRequest, note=note)
        )
        return self._parse(EscalationDetail, resp)

    def resolve(self, escalation_id: str, outcome: str, note: str) -> EscalationDetail:
        """Close it with one of the taxonomy's `outcomes` and a (required) note."""
        resp = self._request(
            "POST",
            f"/v1/escalations/{escalation_id}/resolve",
            body=self._body(ResolveRequest, outcome=outcome, note=note),
        )
        return self._parse(EscalationDetail, resp)

    def reopen(self, escalation_id: str, note: str | None = None) -> EscalationDetail:
        resp = self._request(
            "POST",
            f"/v1/escalations/{escalation_id}/reopen",
            body=self._body(ReopenRequest, note=note),
        )
        return self._parse(EscalationDetail, resp)

    def escalation_audio(self, escalation_id: str) -> bytes:
        """The escalated clip's audio (each call is a `play` audit event); `Gone` once the
        escalation is resolved."""
        return self.download_audio(f"/v1/escalations/{escalation_id}/audio")

    # -- admins

    def queue_status(self) -> QueueStatus:
        return self._parse(QueueStatus, self._request("GET", "/v1/admin/queue"))

    def people(self) -> PeopleList:
        """Everyone with a token: roles, tokens (never the secrets), annotations, live leases."""
        return self._parse(PeopleList, self._request("GET", "/v1/admin/people"))

    def revoke(self, person_id: str, token_id: str | None = None) -> RevokeResult:
        """Admin: revoke one of the person's tokens, or (no `token_id`) all their live ones."""
        resp = self._request(
            "POST",
            f"/v1/admin/people/{quote(person_id, safe='')}/revoke",
            body=self._body(RevokeRequest, token_id=token_id),
        )
        return self._parse(RevokeResult, resp)

    def throughput(self, since: datetime | None = None, hours: int | None = None) -> Throughput:
        """Annotations per person and hour (default: the last 12 hours)."""
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since.isoformat()
        if hours is not None:
            params["hours"] = hours
        resp = self._request("GET", "/v1/admin/throughput", params=params)
        return self._parse(Throughput, resp)

    def welfare(self) -> WelfareState:
        """This person's break state against the deployment's policy, and their opt-outs."""
        return self._parse(WelfareState, self._request("GET", "/v1/me/welfare"))

    def set_opt_outs(self, categories: list[str], person: str | None = None) -> WelfareState:
        """Opt out of clips flagged in `categories` (yourself, or `person` as a supervisor)."""
        path = "/v1/me/opt-outs" if person is None else f"/v1/admin/people/{person}/opt-outs"
        resp = self._request("PUT", path, body=OptOuts(categories=categories))
        return self._parse(WelfareState, resp)

    def exposure(self, since: datetime | None = None) -> ExposureReport:
        """Supervisor: per person, the shift's clips flagged distress/self_harm/explicit/minor."""
        params = {"since": since.isoformat()} if since is not None else None
        return self._parse(
            ExposureReport, self._request("GET", "/v1/admin/exposure", params=params)
        )

    def quality_report(self) -> QualityReport:
        """Supervisor: the quality report (issue 12), with the last hours' series."""
        from api.quality_models import QualityReport

        return self._parse(QualityReport, self._request("GET", "/v1/quality/report"))

    def export_jsonl(self) -> Iterator[bytes]:
        """Admin: the JSONL export, line by line."""
        with self._transport_errors(), self._http.stream("GET", "/v1/export") as r:
            if r.status_code >= 400:
                r.read()
                self._raise_for_status(r)
            for line in r.iter_lines():
                if line:
                    yield line.encode()


def _retry_after(resp: httpx.Response) -> float:
    """Retry-After in seconds (the server sends seconds); 60 when absent or unreadable."""
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "60")))
    except ValueError:
        return 60.0
