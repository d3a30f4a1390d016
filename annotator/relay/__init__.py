"""The audio relay: the TUI runs on a remote host, the sound plays on the annotator's laptop.

`protocol` is the wire format and pairing, `server` and `playback` the laptop side
(`annotator relay`), `link` and `player` the TUI side (`RelayPlayer`, `--audio relay`).
"""

from __future__ import annotations

import os

#: Where the TUI finds the relay (`host:port`); `protocol` re-exports it.
ADDRESS_ENV = "ANNOTATOR_RELAY"


def relay_configured(address: str | None = None) -> bool:
    """True when a relay address is given or set in ANNOTATOR_RELAY (`--audio auto` uses it).

    Here, not in `player` or `protocol`: `--audio auto` asks it at every start, and the relay's
    modules are worth importing only when there is a relay (~25 ms of the cold start)."""
    return bool(address or os.environ.get(ADDRESS_ENV))
