"""What `annotator supervise` assembles before its App starts: `ConsoleServices`.

The annotator's own parts, reused: settings (flags > env > config.toml), the keymap (the player's
keys are the annotator's), the settings → client step, the players (the SSH relay included) and
the cached taxonomy (its `outcomes` are the resolve dialog's choices). No Textual here.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from annotator.services import LaunchError
from api.models import Role

if TYPE_CHECKING:
    from annotator.audio.player import Player
    from annotator.config import Settings
    from annotator.keymap import ResolvedKeymap
    from api.client import QueueClient
    from api.models import Taxonomy

#: Seconds one long-poll waits for news; the server answers at once when something changes.
POLL_WAIT_S = 20.0


@dataclass
class ConsoleServices:
    settings: Settings
    keymap: ResolvedKeymap
    taxonomy: Taxonomy
    client_factory: Callable[..., QueueClient]
    player: Player
    player_reason: str
    #: Monotonic seconds: the countdowns run on it between pages (tests freeze it).
    clock: Callable[[], float] = time.monotonic
    poll_wait_s: float = POLL_WAIT_S
    startup_notices: list[str] = field(default_factory=list)
    #: What the token may see: SUPERVISOR (escalations, exposure) or ADMIN (also the queue's
    #: figures); None when the server could not be asked at start (each view then finds out).
    role: Role | None = None

    def shutdown(self) -> None:
        self.player.close()


def build_console(args: argparse.Namespace) -> ConsoleServices:
    """Everything the console needs, or a LaunchError saying what to fix (an annotator's token
    is told it needs a supervisor's)."""
    from annotator.services import _taxonomy, connect, open_configured_player
    from api.client import ApiError, Forbidden, Unauthorized

    settings, keymap, factory = connect(args)
    notices: list[str] = []
    role: Role | None = None
    try:
        with factory() as client:
            client.escalations(limit=1)
            role = _admin_or_supervisor(client)
    except Forbidden:
        raise LaunchError(
            "this token has the annotator role: `annotator supervise` needs a supervisor's or "
            "an admin's token (`annotator token create NAME --role supervisor`); "
            "`annotator` opens the annotation screen"
        ) from None
    except Unauthorized as e:
        raise LaunchError(
            f"the server refused the token ({e.error.message}): check ANNOTATOR_TOKEN or "
            "token in config.toml"
        ) from None
    except ApiError as e:
        notices.append(f"the server is not answering yet ({e}); the list fills once it does")
    taxonomy = _taxonomy(factory)
    player, reason = open_configured_player(settings)
    if settings.insecure:
        notices.append("--insecure: recordings and your token may cross the network unencrypted")
    return ConsoleServices(
        settings=settings,
        keymap=keymap,
        taxonomy=taxonomy,
        client_factory=factory,
        player=player,
        player_reason=reason,
        startup_notices=notices,
        role=role,
    )


def _admin_or_supervisor(client: QueueClient) -> Role:
    """A token that reads the escalations is a supervisor's or an admin's: the admin route says
    which (there is no role route)."""
    from api.client import Forbidden

    try:
        client.queue_status()
    except Forbidden:
        return Role.SUPERVISOR
    return Role.ADMIN


def run_supervise(args: argparse.Namespace) -> int:
    """`annotator supervise`: the supervisors' console."""
    import sys

    from api.text_safety import for_terminal

    try:
        services = build_console(args)
    except LaunchError as e:
        sys.stderr.write(f"annotator supervise: {for_terminal(str(e))}\n")
        return 2
    from annotator.supervise.app import SuperviseApp

    app = SuperviseApp(services)
    try:
        app.run()
    finally:
        services.shutdown()
    return app.return_code or 0
