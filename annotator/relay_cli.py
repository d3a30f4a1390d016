"""`annotator relay`: run on the laptop, play what the remote annotation terminal sends.

The banner (pairing secret, the ssh and annotator commands) goes to stdout; the log (pairings,
refusals, disconnects) to stderr. Neither ever contains audio, and nothing is written to disk.

Working over SSH (the README section, in short):

    laptop$ annotator relay                      # prints a one-time pairing secret
    laptop$ ssh -R 47001:127.0.0.1:47001 you@host
    host$   export ANNOTATOR_RELAY=127.0.0.1:47001
    host$   read -rs ANNOTATOR_RELAY_SECRET && export ANNOTATOR_RELAY_SECRET   # paste it
    host$   annotator --audio relay              # or audio = "relay" in config.toml

The relay listens on loopback only; the SSH tunnel carries (and encrypts) the stream. Both sides
prove the secret by HMAC challenge-response; it never crosses the wire. If the tunnel drops, the
annotator keeps working muted with a banner and reconnects by itself when the relay is back. A
newly paired session replaces the previous one (the old one stays muted: no tug of war).
`annotator doctor` on the host plays a 200 ms tone through the relay to check the whole path.

The PulseAudio/PipeWire route works too, for those who prefer it:

    laptop$ pactl load-module module-native-protocol-tcp port=4713 auth-ip-acl=127.0.0.1
    laptop$ ssh -R 24713:localhost:4713 you@host
    host$   PULSE_SERVER=tcp:localhost:24713 annotator --audio pulse
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import threading
from types import FrameType

from annotator.relay import protocol as p
from annotator.relay.server import NotLoopbackError, RelayServer, loopback_address


def relay(args: argparse.Namespace) -> int:
    host = str(getattr(args, "host", None) or "127.0.0.1")
    port = int(getattr(args, "port", None) or p.DEFAULT_PORT)
    audio = str(getattr(args, "audio", None) or "auto")
    try:
        host = loopback_address(host)
    except NotLoopbackError as exc:
        _err(f"annotator relay: {exc}")
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s relay: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # A core dump would put the clips in memory on disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    from annotator.audio.backends import open_player

    # The relay plays locally: `auto` must never pick the relay backend and send to itself.
    os.environ.pop(p.ADDRESS_ENV, None)
    player, reason = open_player(audio)
    if player.name == "none" and audio != "none":
        player.close()
        _err(
            f"annotator relay: no sound here: {reason}.\n"
            "Run `annotator doctor` on this laptop, or pick a backend with --audio."
        )
        return 1

    fixed_secret = os.environ.get(p.SECRET_ENV)
    secret = fixed_secret or p.new_secret()
    server = RelayServer(player, secret, host, port)
    try:
        port = server.bind()
    except OSError as exc:
        player.close()
        _err(
            f"annotator relay: cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (another relay already running? pick another --port)"
        )
        return 1

    shown = f"<the value of {p.SECRET_ENV} here>" if fixed_secret else secret
    addr = f"[{host}]" if ":" in host else host
    _out(
        f"annotator relay: playing on {reason}\n"
        f"listening on {addr}:{port} (loopback only; one annotator at a time: a newly paired "
        "connection replaces the previous one)\n"
        f"pairing secret, valid until this relay stops: {shown}\n"
        "\n"
        "1. from this laptop, log in to the host with the tunnel:\n"
        f"     ssh -R {port}:127.0.0.1:{port} you@host\n"
        "2. there, start the annotator with:\n"
        f"     ANNOTATOR_RELAY=127.0.0.1:{port} ANNOTATOR_RELAY_SECRET={shown} "
        "annotator --audio relay\n"
        "\n"
        "Ctrl-C stops the relay."
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    serving = threading.Thread(target=server.serve_forever, name="relay-accept", daemon=True)
    serving.start()
    while not stop.wait(0.5):
        if not serving.is_alive():
            _err("annotator relay: the listener stopped unexpectedly")
            server.shutdown()
            return 1
    server.shutdown()
    logging.getLogger("annotator.relay").info("stopped")
    return 0


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
