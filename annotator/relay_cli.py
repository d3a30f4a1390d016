"""`annotator relay`: run on the laptop, play what the remote annotation terminal sends.

The banner (pairing secret, the ssh and annotator commands) goes to stdout; the log (pairings,
refusals, disconnects) to stderr. Neither ever contains audio, and nothing is written to disk.

Working over SSH (the README section, in short):

    laptop$ annotator relay                      # prints its pairing secret
    laptop$ ssh -R 47001:127.0.0.1:47001 you@host
    host$   tmux new -A -s annotate              # survives a dropped ssh connection
    host$   export ANNOTATOR_RELAY=127.0.0.1:47001
    host$   read -rsp 'relay secret: ' ANNOTATOR_RELAY_SECRET && echo   # paste it: not echoed
    host$   export ANNOTATOR_RELAY_SECRET
    host$   annotator --audio relay              # or audio = "relay" in config.toml

The secret is kept (keyring or a 0600 file, `secret_store`), so a restarted relay pairs with the
running annotator as before; `--new-secret` rotates it and the TUI re-pairs in place. The relay
listens on loopback only; the SSH tunnel carries (and encrypts) the stream. Both sides prove the
secret by HMAC challenge-response; it never crosses the wire. If the tunnel drops, the annotator
keeps working muted with a banner and reconnects by itself when the relay is back. A newly paired
session replaces the previous one; the old one waits muted and takes the sound back by itself when
the newer one ends. `annotator doctor` on the host plays a 200 ms tone through the relay when the
device is free, never taking it from a running annotator.

The PulseAudio/PipeWire route works too, for those who prefer it:

    laptop$ pactl load-module module-native-protocol-tcp port=4713 listen=127.0.0.1 \
                auth-ip-acl=127.0.0.1
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
from api.text_safety import for_terminal


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

    try:
        secret, kept = _pairing_secret(bool(getattr(args, "new_secret", False)))
    except _SecretProblem as exc:
        player.close()
        _err(f"annotator relay: {exc}")
        return 2
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

    _out(banner(reason, host, port, secret if kept else None, kept))

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


class _SecretProblem(Exception):
    pass


def _pairing_secret(rotate: bool) -> tuple[str, str]:
    """The secret to pair with and where it is kept ("" when it comes from the environment)."""
    from annotator.relay.secret_store import SecretStoreError, load_relay_secret

    fixed = os.environ.get(p.SECRET_ENV)
    if fixed:
        if rotate:
            raise _SecretProblem(
                f"--new-secret rotates the stored secret, but {p.SECRET_ENV} is set and would "
                "be used instead: unset it first"
            )
        weak = p.weak_secret(fixed)
        if weak is not None:
            raise _SecretProblem(f"{p.SECRET_ENV}: {weak}; unset it to use a generated one")
        return fixed, ""
    try:
        secret, where, made = load_relay_secret(rotate=rotate)
    except (SecretStoreError, OSError) as exc:
        raise _SecretProblem(f"cannot keep the pairing secret: {exc}") from exc
    return secret, f"{where} ({'new' if made else 'the same as last time'})"


def banner(reason: str, host: str, port: int, secret: str | None, kept: str) -> str:
    """What the relay prints on start: the secret once, and commands that never contain it."""
    addr = f"[{host}]" if ":" in host else host
    if secret is None:
        pairing = f"pairing secret: the value of {p.SECRET_ENV} in this relay's environment"
    else:
        pairing = (
            f"pairing secret: {secret}\n"
            f"  kept in {kept}; it stays the same across restarts until "
            "`annotator relay --new-secret`"
        )
    return (
        f"annotator relay: playing on {reason}\n"
        f"listening on {addr}:{port} (loopback only; one annotator at a time: a newly paired "
        "connection replaces the previous one)\n"
        f"{pairing}\n"
        "\n"
        "1. from this laptop, log in to the host with the tunnel:\n"
        f"     ssh -R {port}:127.0.0.1:{port} you@host\n"
        "2. there, inside tmux or screen so a dropped connection does not end your session:\n"
        "     tmux new -A -s annotate\n"
        f"     export {p.ADDRESS_ENV}=127.0.0.1:{port}\n"
        f"     read -rsp 'relay secret: ' {p.SECRET_ENV} && echo\n"
        f"     export {p.SECRET_ENV}\n"
        "     annotator --audio relay\n"
        "   (paste the secret at the prompt: it is not echoed and stays out of shell history)\n"
        "\n"
        "Ctrl-C stops the relay."
    )


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    # Messages quote exceptions (peer addresses, OS errors, a config's text): escaped, so none
    # of them can drive the terminal.
    sys.stderr.write(for_terminal(text, keep_newlines=True) + "\n")
    sys.stderr.flush()
