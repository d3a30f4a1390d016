"""The remote side of the SSH test: plays clip files through the relay, one after the other.

Usage (on the "host", inside the ssh session): python -m tests.relay.remote_play FILE...
Relay address and secret come from ANNOTATOR_RELAY / ANNOTATOR_RELAY_SECRET (sent with SendEnv,
never on a command line). Prints one JSON line per clip once the laptop has played it, then waits
for a line on stdin before the next clip (the test reads the laptop's capture in between).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from annotator.audio.decode import decode
from annotator.relay.player import open_relay_player


def main() -> int:
    player = open_relay_player()
    try:
        for path in sys.argv[1:]:
            audio = decode(Path(path).read_bytes())
            player.load(audio)
            deadline = time.monotonic() + 15
            while not player.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            player.play()
            while player.last_started is None and time.monotonic() < deadline:
                time.sleep(0.001)
            last = player.last_started
            drained = player.wait_drained(audio.duration_s + 10)
            print(
                json.dumps(
                    {
                        "clip": path,
                        "connected": player.connected,
                        "status": player.status,
                        "started_ms": None if last is None else (last.estimated_at - started) * 1e3,
                        "drained": drained,
                    }
                ),
                flush=True,
            )
            sys.stdin.readline()
    finally:
        player.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
