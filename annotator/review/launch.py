"""`annotator review` (reviewer role): settings, client and player, then the review screen."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from api.text_safety import for_terminal

if TYPE_CHECKING:
    from api.client import QueueClient


def run_review(args: argparse.Namespace) -> int:
    from annotator.audio.backends import open_player
    from annotator.review.app import ReviewApp
    from annotator.services import LaunchError, load_settings_or_fail
    from annotator.workbench import NotConfigured, client_factory
    from api.client import InsecureServerError
    from api.review_client import ReviewClient

    try:
        settings = load_settings_or_fail(args)
        factory = client_factory(settings)
        _check_role(factory)
    except (LaunchError, NotConfigured, InsecureServerError) as e:
        sys.stderr.write(for_terminal(f"annotator review: {e}") + "\n")
        return 2
    secret = settings.relay_secret
    player, _ = open_player(
        settings.audio,
        relay=settings.relay,
        relay_secret=secret.get_secret_value() if secret is not None else None,
    )
    client = factory()
    try:
        ReviewApp(ReviewClient(client), player).run()
    finally:
        player.close()
        client.close()
    return 0


def _check_role(factory: Callable[[], QueueClient]) -> None:
    """A token that cannot read the review queue is told so before the screen opens (it used to
    open on nine empty cards and a 403); a server not answering yet is left to the screen."""
    from annotator.services import LaunchError, token_refused
    from api.client import ApiError, Forbidden, Unauthorized
    from api.review_client import ReviewClient

    try:
        with factory() as client:
            ReviewClient(client).reviews(limit=1)
    except Forbidden:
        needs = "a reviewer's, a supervisor's or an admin's token"
        raise LaunchError(
            f"this token cannot review: `annotator review` needs {needs} "
            "(`annotator token create NAME --role reviewer`); `annotator` opens the annotation "
            "screen"
        ) from None
    except Unauthorized as e:
        raise token_refused(e) from None
    except ApiError:
        return
