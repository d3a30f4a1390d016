"""`RelayPlayer`: the Player the TUI uses when the sound card is on the annotator's laptop.

It is the shared BasePlayer (clock, WSOLA renders, device thread) with a network "device": each
segment the base publishes becomes a PLAY of that render from its start frame, streamed by the
link thread. The playhead is the base's wall clock, so it moves on while the tunnel is down (the
TUI works on, muted); the relay's position reports pull it back when the laptop is behind, e.g.
because PCM arrived late over a slow tunnel.

Configuration: ANNOTATOR_RELAY=host:port and ANNOTATOR_RELAY_SECRET (or the `relay` and
`relay_secret` settings passed in). The secret never leaves this process: only HMAC proofs do.
"""

from __future__ import annotations

import os
import re
import time

from annotator.audio.decode import DecodedAudio
from annotator.audio.player import BackendUnavailableError, BasePlayer, Segment
from annotator.relay import protocol as p
from annotator.relay.link import Link, Preload, Started, Wanted

# Correct the playhead only past this: smaller differences are report jitter, and a playhead
# that twitches is worse than one 50 ms off.
_RESYNC_S = 0.06
# A play pressed this recently when the link comes up starts from where it was pressed.
_JUST_PRESSED_S = 0.25

_HOST_PORT = re.compile(r"^\[?(?P<host>[^\[\]]+?)\]?:(?P<port>\d{1,5})$")


def parse_address(address: str) -> tuple[str, int]:
    match = _HOST_PORT.match(address.strip())
    if match is None or not 0 < int(match.group("port")) < 65536:
        raise BackendUnavailableError(
            f"relay address {address!r} is not host:port (e.g. 127.0.0.1:{p.DEFAULT_PORT})"
        )
    return match.group("host"), int(match.group("port"))


class RelayPlayer(BasePlayer):
    name = "relay"

    def __init__(self, address: str, secret: str, *, probe: bool = False) -> None:
        """`probe`: `annotator doctor`'s check, which never takes the sound from a session."""
        host, port = parse_address(address)
        key = _key(secret)
        self.address = f"{host}:{port}"
        self._link = Link(
            host,
            port,
            key,
            on_connected=self._republish,
            on_started=self._started,
            on_position=self._follow_relay,
            mode=p.Mode.PROBE if probe else p.Mode.TAKE_OVER,
        )
        self._last_started: Started | None = None
        self._relay_playing = False
        super().__init__()

    # ----- what the TUI shows -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def status(self) -> str:
        """One line for the banner/status bar: where the sound goes, or why it is muted."""
        return self._link.status

    @property
    def muted_reason(self) -> str:
        """Why it is muted, in a few words (the status bar's `relay: muted (why)`)."""
        return self._link.muted_reason

    @property
    def needs_secret(self) -> bool:
        """The relay refused the secret: muted until `repair` is given the current one."""
        return self._link.needs_secret

    def repair(self, secret: str) -> None:
        """Pair again with `secret` (the relay's was rotated); the clip and playhead stay.

        Raises BackendUnavailableError when the secret is empty."""
        self._link.repair(_key(secret))

    @property
    def relay_info(self) -> str:
        """What the relay plays on, e.g. "miniaudio on laptop" (empty until paired)."""
        return self._link.relay_info

    @property
    def last_started(self) -> Started | None:
        """The latest device start the relay reported (bench and tests measure latency with it)."""
        return self._last_started

    # ----- the Player protocol (the rest is the base's) -----------------------------------------

    def load(self, audio: DecodedAudio) -> None:
        super().load(audio)
        with self._lock:
            self._last_started = None
        self._preload()

    def _renders_replaced(self) -> None:
        self._preload()  # the gain changed: the laptop's copy of the 1x render is stale

    def _preload(self) -> None:
        with self._lock:
            audio, load_id, heard = self._audio, self._load_id, self._renders.get(1.0)
        if audio is None or heard is None:
            return
        # Push the clip (as it is heard: gain applied) to the laptop now, so play finds it there.
        self._link.preload(Preload(load_id, heard, audio.sample_rate, audio.channels))

    # ----- device hooks (the base's device thread) ----------------------------------------------

    # The hooks ignore the segment they are handed and send the player's state as it is now:
    # a reconnection may have republished a newer state meanwhile (see `_republish`), and the
    # link drops anything older than the newest generation it has seen.

    def _device_play(self, segment: Segment) -> None:
        self._send_state()

    def _device_stop(self) -> None:
        self._send_state()

    def _device_close(self) -> None:
        self._link.close()

    def _device_drained(self) -> bool:
        return not (self._relay_playing and self._link.connected)

    def _send_state(self) -> None:
        with self._lock:
            generation, wanted = self._generation, self._wanted_locked()
        self._relay_playing = wanted is not None
        self._link.want(generation, wanted)

    def _wanted_locked(self) -> Wanted | None:
        audio = self._audio
        if audio is None or not self._playing or self._closed:
            return None
        render = self._renders[self._audible_speed]
        start = round(self._anchor_pos * audio.sample_rate / self._audible_speed)
        if start >= render.shape[0]:
            return None
        return Wanted(
            generation=self._generation,
            load_id=self._load_id,
            speed=self._audible_speed,
            samples=render,
            rate=audio.sample_rate,
            channels=audio.channels,
            start=max(0, start),
        )

    # ----- link callbacks (link threads) ----------------------------------------------------------

    def _republish(self) -> tuple[int, Wanted | None]:
        """Connected (again): what should play now, from where the playhead is now."""
        with self._lock:
            now = time.monotonic()
            if self._playing and now - self._anchor_t < _JUST_PRESSED_S:
                # Play was pressed while the link was coming up: start where it was pressed
                # rather than clip the first syllable; the playhead waits for the sound.
                self._anchor_t = now
            else:
                self._anchor_pos, self._anchor_t = self._position_locked(now), now
            self._generation += 1
            wanted = self._wanted_locked()
            self._relay_playing = wanted is not None
            return self._generation, wanted

    def _started(self, started: Started) -> None:
        with self._lock:
            if started.load_id != self._load_id:
                return
            self._last_started = started
            if self._first_frame_at is None:
                self._first_frame_at = started.estimated_at

    def _follow_relay(self, load_id: int, speed: float, relay_pos: float, playing: bool) -> None:
        if not playing:
            self._relay_playing = False
            return
        with self._lock:
            if load_id != self._load_id or speed != self._audible_speed or not self._playing:
                return
            now = time.monotonic()
            if abs(self._position_locked(now) - relay_pos) > _RESYNC_S:
                self._anchor_pos, self._anchor_t = relay_pos, now


def _key(secret: str) -> bytes:
    try:
        return p.secret_key(secret)
    except ValueError as exc:
        raise BackendUnavailableError(str(exc)) from exc


def open_relay_player(
    address: str | None = None, secret: str | None = None, *, probe: bool = False
) -> RelayPlayer:
    """A RelayPlayer for `address`/`secret`, else ANNOTATOR_RELAY/ANNOTATOR_RELAY_SECRET.

    Does not connect: the link connects on the first clip and keeps reconnecting by itself.
    Raises BackendUnavailableError saying what is missing.
    """
    address = address or os.environ.get(p.ADDRESS_ENV)
    secret = secret or os.environ.get(p.SECRET_ENV)
    if not address:
        raise BackendUnavailableError(
            f"no relay configured: set {p.ADDRESS_ENV}=127.0.0.1:{p.DEFAULT_PORT} (the remote end "
            f"of `ssh -R {p.DEFAULT_PORT}:127.0.0.1:{p.DEFAULT_PORT}`) or relay in config.toml"
        )
    if not secret:
        raise BackendUnavailableError(
            f"no relay pairing secret: paste the one `annotator relay` shows with "
            f"read -rsp 'relay secret: ' {p.SECRET_ENV}, then export {p.SECRET_ENV}"
        )
    return RelayPlayer(address, secret, probe=probe)
