"""`InlineBindings`: an editing widget runs its own key bindings where its typed characters run.

Textual handles a printable key in the focused widget's `_on_key`, but a bound key (Backspace,
Delete, arrows, Home/End, ctrl+w, Enter in an Input…) bubbles up the DOM to the App, one message
queue per ancestor, and its action runs there. Keys read from the terminal in one burst are all
forwarded to the widget before the first bound key has made that trip, so "timer", Backspace x5,
"abc" typed fast became "timerabc" with three characters deleted: Textualize/textual issue 6605.

Upstream's fix, pull request 6631 (open when this was written; Textual 8.2.8, the newest release,
does not contain it), runs the widget's own non-priority bindings inline in `_on_key`, resolved
the way the App would resolve them. This mixin does the same for our widgets, so a bound key acts
in its place among the characters typed around it. Priority bindings are unaffected: the App runs
them before the key reaches any widget. Bindings of ancestor widgets still bubble, so a widget that
edits text owns every key that edits it.

Drop this once a pinned Textual release contains pull request 6631: delete the module and the
base class from `TranscriptEditor`, the intent filter and the note input.

Usage: list it AFTER the Textual widget class, so Textual's own `_on_key` (typed characters) runs
first and this one only sees the keys it left: `class TranscriptEditor(TextArea, InlineBindings)`.
Textual calls each class's `_on_key` in MRO order and stops at `prevent_default()`.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget

__all__ = ["InlineBindings"]


class InlineBindings(Widget):
    """Run this widget's own non-priority key bindings inline, in typing order."""

    async def _on_key(self, event: events.Key) -> None:
        if await self.run_own_binding(event.key):
            event.stop()
            event.prevent_default()  # Widget._on_key (key_* methods) is not wanted either

    async def run_own_binding(self, key: str) -> bool:
        """Run the first of this widget's non-priority bindings for `key` that handles it.

        The same resolution as `App._check_bindings` for the focused widget's namespace: the
        app's keymap applied, bindings tried in order, an action that is disabled
        (`check_action`) or raises `SkipAction` passes the key on.
        """
        bindings = self._bindings
        keymap = self.app._keymap
        if keymap:
            bindings = bindings.copy()
            bindings.apply_keymap(keymap)
        for binding in bindings.key_to_bindings.get(key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                return True
        return False
