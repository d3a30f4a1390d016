"""Settings → a `QueueClient` factory: written once, used by the TUI, the CLI and doctor."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from annotator.config import Settings
from api.client import QueueClient

ClientFactory = Callable[..., QueueClient]


class NotConfigured(Exception):
    """No server or no token: the message names the setting to fix."""


def connection(settings: Settings, *, need_token: bool = True) -> tuple[str, str]:
    """The server URL and token, or NotConfigured naming where to set them."""
    from annotator.paths import config_file

    if not settings.server:
        raise NotConfigured(
            "no server configured: pass --server URL, set ANNOTATOR_SERVER, or put "
            f'server = "https://…" in {config_file()} (or try `annotator demo`)'
        )
    token = settings.token.get_secret_value() if settings.token is not None else ""
    if not token and need_token:
        raise NotConfigured(
            'no token configured: set ANNOTATOR_TOKEN (preferred), put token = "…" in '
            f"{config_file()}, or pass --token"
        )
    return str(settings.server), token


def client_factory(settings: Settings, *, need_token: bool = True) -> ClientFactory:
    """`factory(timeout=…)` makes a client for the configured server (NotConfigured if none;
    `need_token=False` for `annotator doctor`, which checks the server before the token).

    Construction fails at once with InsecureServerError for plain http:// to a remote host."""
    server, token = connection(settings, need_token=need_token)
    plain_http = urlsplit(server).scheme == "http"
    # Over plain http there is no TLS to verify; skipping the CA bundle saves loading it for
    # every client (tens of milliseconds each, on the cold-start path).
    verify: bool | str = (
        False if plain_http else (str(settings.ca_bundle) if settings.ca_bundle else True)
    )
    insecure = bool(settings.insecure)

    def factory(timeout: float = 10.0) -> QueueClient:
        return QueueClient(server, token, timeout=timeout, verify=verify, insecure=insecure)

    if plain_http:
        factory().close()  # an insecure URL fails here, with its message, not in a thread
    return factory
