"""Every action in the command palette, built from the actions registry so nothing is left out."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from annotator.actions import ANNOTATE, ActionSpec, actions_for


class ActionCommands(Provider):
    """Runs the chosen action on the screen the palette was opened from (the annotate screen, or
    the console's: an app's `ACTION_VIEW` says whose actions it lists)."""

    @property
    def _actions(self) -> tuple[ActionSpec, ...]:
        return actions_for(getattr(self.app, "ACTION_VIEW", ANNOTATE))

    def _label(self, spec: ActionSpec) -> str:
        return f"{spec.group}: {spec.description}"

    def _help(self, spec: ActionSpec) -> str:
        keymap = getattr(self.app, "services", None)
        keys = keymap.keymap.keys_for(spec.id) if keymap is not None else []
        return f"{spec.id}  ({', '.join(keys)})" if keys else spec.id

    async def _run(self, spec: ActionSpec) -> None:
        await self.screen.run_action(spec.action)

    async def discover(self) -> Hits:
        for spec in self._actions:
            yield DiscoveryHit(self._label(spec), partial(self._run, spec), help=self._help(spec))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in self._actions:
            label = self._label(spec)
            score = max(matcher.match(label), matcher.match(spec.id))
            if score > 0:
                yield Hit(
                    score, matcher.highlight(label), partial(self._run, spec), help=self._help(spec)
                )
