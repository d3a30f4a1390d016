"""Every action in the command palette, built from the actions registry so nothing is left out."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from annotator.actions import ACTIONS, ActionSpec


class ActionCommands(Provider):
    """Runs the chosen action on the screen the palette was opened from (the annotate screen)."""

    def _label(self, spec: ActionSpec) -> str:
        return f"{spec.group}: {spec.description}"

    def _help(self, spec: ActionSpec) -> str:
        keymap = getattr(self.app, "services", None)
        keys = keymap.keymap.keys_for(spec.id) if keymap is not None else []
        return f"{spec.id}  ({', '.join(keys)})" if keys else spec.id

    async def _run(self, spec: ActionSpec) -> None:
        await self.screen.run_action(spec.action)

    async def discover(self) -> Hits:
        for spec in ACTIONS:
            yield DiscoveryHit(self._label(spec), partial(self._run, spec), help=self._help(spec))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in ACTIONS:
            label = self._label(spec)
            score = max(matcher.match(label), matcher.match(spec.id))
            if score > 0:
                yield Hit(
                    score, matcher.highlight(label), partial(self._run, spec), help=self._help(spec)
                )
