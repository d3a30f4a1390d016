"""Run a player in a fresh process (ALSA reads its config once per process).

Usage: python -m tests.audio.play_script '<json options>' < clip-bytes
Options: backend, seek (s, before play), speed (rendered before play), loudness (dBFS target,
set before load), gain (dB, set after load), timeout.
Prints one JSON line: name, reason, first_frame_ms, drained, last_error, position, gain_db.
"""

from __future__ import annotations

import json
import sys
import time

from annotator.audio.backends import _open
from annotator.audio.decode import decode


def main() -> int:
    opts = json.loads(sys.argv[1])
    audio = decode(sys.stdin.buffer.read())
    player, reason = _open(opts["backend"])
    timeout = float(opts.get("timeout", 10.0))
    try:
        if "loudness" in opts:
            player.set_loudness_target(float(opts["loudness"]))
        player.load(audio)
        if "gain" in opts:
            player.set_gain(float(opts["gain"]))
            player.wait_idle(timeout)
        if "speed" in opts:
            player.set_speed(float(opts["speed"]))
            player.wait_idle(timeout)
        if "seek" in opts:
            player.seek(float(opts["seek"]))
        started = time.monotonic()
        player.play()
        drained = player.wait_drained(timeout)
        first = player.first_frame_at
        result = {
            "name": player.name,
            "reason": reason,
            "audible_speed": player.audible_speed,
            "first_frame_ms": None if first is None else (first - started) * 1000,
            "drained": drained,
            "last_error": player.last_error,
            "gain_db": player.applied_gain_db,
            "gain_capped": player.gain_capped,
        }
    finally:
        player.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
