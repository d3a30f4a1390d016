"""The player's keys, written once for every screen that plays a clip (the annotate screen and
the supervisor's console): same actions, same binding ids, same seek step and speed range."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from annotator.audio.gain import describe as describe_gain

if TYPE_CHECKING:
    from annotator.audio.player import Player
    from annotator.config import Settings
    from widgets import PlayerBar

MIN_SPEED, MAX_SPEED = 0.5, 2.0


class _Services(Protocol):
    @property
    def player(self) -> Player: ...

    @property
    def settings(self) -> Settings: ...


class _PlayerScreen(Protocol):
    @property
    def services(self) -> _Services: ...

    @property
    def player_bar(self) -> PlayerBar: ...

    def played(self) -> None: ...

    def notify(self, message: str, *, timeout: float | None = None) -> None: ...

    def _step_speed(self, direction: int) -> None: ...


class PlayerKeys:
    """Mixin for a Screen with `services` (a player and the settings) and a `player_bar`.

    `played()` is the hook a screen overrides to count a deliberate listen (the annotate
    screen's clip clock); the console needs none."""

    def played(self) -> None:
        """A key started the sound."""

    def action_player_toggle(self: _PlayerScreen) -> None:
        player = self.services.player
        if not player.playing:
            self.played()
        player.toggle()

    def action_player_replay(self: _PlayerScreen) -> None:
        player = self.services.player
        player.seek(0.0)
        if not player.playing:
            player.play()
        self.played()

    def action_player_back(self: _PlayerScreen) -> None:
        player = self.services.player
        player.seek(max(0.0, player.position - self.services.settings.seek_seconds))

    def action_player_forward(self: _PlayerScreen) -> None:
        player = self.services.player
        player.seek(player.position + self.services.settings.seek_seconds)

    def _step_speed(self: _PlayerScreen, direction: int) -> None:
        player = self.services.player
        step = self.services.settings.speed_step
        speed = round(min(MAX_SPEED, max(MIN_SPEED, player.speed + direction * step)), 2)
        player.set_speed(speed)
        self.player_bar.speed = speed

    def _step_gain(self: _PlayerScreen, steps: int) -> None:
        player = self.services.player
        if not player.step_gain(steps):
            self.notify("Already as loud as this clip can go without clipping.", timeout=2)
        self.player_bar.gain = describe_gain(player.applied_gain_db, capped=player.gain_capped)

    def action_player_louder(self: _PlayerScreen) -> None:
        PlayerKeys._step_gain(self, +1)

    def action_player_quieter(self: _PlayerScreen) -> None:
        PlayerKeys._step_gain(self, -1)

    def action_player_slower(self: _PlayerScreen) -> None:
        self._step_speed(-1)

    def action_player_faster(self: _PlayerScreen) -> None:
        self._step_speed(+1)
