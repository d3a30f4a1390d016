"""`annotator review` (reviewer role): settings, client and player, then the review screen."""

from __future__ import annotations

import argparse
import sys

from api.text_safety import for_terminal


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
