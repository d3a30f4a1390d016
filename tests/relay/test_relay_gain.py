"""Gain through the SSH audio relay: the laptop's device gets the gained render, byte for byte,
and a gain change while paused re-sends the clip as it is now heard (issue 14 item 6)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from annotator.audio import gain
from annotator.relay.player import RelayPlayer
from tests.fixtures.audio import AlsaFileSink
from tests.relay.support import RelayProcess, clip
from tests.relay.test_relay import assert_device_got, connected, players, relays

__all__ = ["players", "relays"]  # the fixtures, shared with test_relay


def test_the_laptop_hears_the_gain_the_annotator_set(
    make_alsa_file_sink: Callable[..., AlsaFileSink],
    relays: Callable[..., RelayProcess],
    players: Callable[..., RelayPlayer],
) -> None:
    sink = make_alsa_file_sink()
    relay = relays(sink, audio="simpleaudio")
    quiet = clip(1.0)
    quiet = type(quiet)(
        samples=np.ascontiguousarray((quiet.samples // 8).astype(np.int16)),
        sample_rate=quiet.sample_rate,
        channels=quiet.channels,
        duration_s=quiet.duration_s,
    )
    player = players(relay.port)
    player.load(quiet)
    connected(player)
    # Changed after the load, so the 1x copy already preloaded on the laptop is stale.
    player.set_gain(12.0)
    assert player.wait_idle(5)
    player.play()
    expected = gain.apply_gain(quiet.samples, 12.0)
    assert not np.array_equal(expected, quiet.samples)
    assert_device_got(sink, "simpleaudio", expected.tobytes())
