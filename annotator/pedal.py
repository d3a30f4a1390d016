"""Foot pedals: what the terminal and Textual can tell the annotator about a pedal held down.

A pedal programmed as a keyboard sends a key press when pressed (and, in a terminal speaking the
kitty keyboard protocol with "report event types" on, a release when let go). Hold-to-play needs
that release. Textual (8.2.x, pinned `<9`) asks the terminal for the kitty protocol's
disambiguation, all-keys-as-codes and associated-text flags (1 | 8 | 16) but not for event types
(2), and its `events.Key` carries no press/release field, so no terminal hands the annotator a
release today: the pedal keymap's middle pedal toggles play/pause, and the screen says so.
`key_releases_reported()` checks the installed Textual, so the notice changes (and the test that
pins this fails) the day Textual delivers releases and hold-to-play can be built on them.
"""

from __future__ import annotations

import inspect

__all__ = ["PEDAL_KEYMAP", "key_releases_reported", "pedal_notice"]

PEDAL_KEYMAP = "pedal"


def key_releases_reported() -> bool:
    """Whether the installed Textual can deliver key releases to the app at all."""
    from textual import events

    parameters = inspect.signature(events.Key).parameters
    return hasattr(events, "KeyRelease") or hasattr(events, "KeyUp") or "event_type" in parameters


def pedal_notice(keymap_name: str, toggle_key: str) -> str | None:
    """What to tell an annotator using the pedal keymap (None for other keymaps)."""
    if keymap_name != PEDAL_KEYMAP:
        return None
    if key_releases_reported():
        return (
            f"The play pedal ({toggle_key}) toggles: this Textual reports key releases, but "
            "hold-to-play is not built yet."
        )
    return (
        f"The play pedal ({toggle_key}) toggles: press it to play, press it again to pause. "
        "Holding it does not keep playing (no terminal reports key releases to this app)."
    )
