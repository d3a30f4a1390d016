"""`FlagPanel`: one row per flag with its toggle key and on/off mark, and the escalation note.

Flags are toggled by App-level keys (one key per flag, from the active keymap), or from the
rows themselves: they take focus (`focus_rows()`, the "go to flags" key), ↑/↓ move a highlight
through the flags and Space toggles the highlighted one (bindings run inline, in typing order).
Escalation flags (distress, self_harm) are drawn in a
warning colour; while any is on, a required note Input for the supervisor is shown under the rows.
Text typed in the note survives toggling the flag off and on again.

Constructor: `FlagPanel(flags=(), *, name, id, classes)` (`flags`: the taxonomy's FlagDefs).

Reactives:
    flags (frozenset[str]): ids of the flags that are on. Setting it directly (restoring a draft)
        posts no message; `toggle()` does.

Properties:
    note (str, settable): the note as typed (kept even while no escalation flag is on; the
        submit rule decides whether it is needed). Setting it posts no message.
    note_required (bool): an escalation flag is on.
    escalated (frozenset[str]): the escalation flags that are on.

Methods:
    set_flags(list[FlagDef]): the taxonomy's flags (flags no longer known are switched off).
    set_key_hints(dict[flag_id, key_display]): the key shown before each row ("F1", "alt+1").
    toggle(flag_id): flip one flag and post Changed; ValueError for an unknown id.
    reset(): all flags off, note cleared (next clip); posts nothing.
    focus_note(): show and focus the note Input.
    focus_rows(): focus the flag rows (the highlight shows while they have focus).

Properties (cont.): highlighted (str | None): the flag the highlight is on.

Messages:
    FlagPanel.Changed(panel, flags, note): after `toggle()` and on every edit typed in the note.
    (Enter in the note posts the note Input's own Input.Submitted, which bubbles unhandled.)

Component classes: flag-panel--key, flag-panel--on, flag-panel--off, flag-panel--escalation,
flag-panel--definition, flag-panel--highlight (the highlighted row while the rows have focus).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.style import Style
from textual.widget import Widget
from textual.widgets import Input, Label

from api.models import FlagDef
from api.text_safety import for_terminal
from widgets.inline_bindings import InlineBindings

__all__ = ["NOTE_OPTIONAL_PLACEHOLDER", "NOTE_PLACEHOLDER", "FlagPanel"]

#: "(required)" first: at 80 columns the end of the placeholder is cut off.
NOTE_PLACEHOLDER = "(required) note for the supervisor: what happened?"
#: With no escalation flag on, a note is welcome but nothing asks for it.
NOTE_OPTIONAL_PLACEHOLDER = "(optional) note for the supervisor"


class _NoteInput(Input, InlineBindings):
    """The note: its editing keys run in typing order (see widgets/inline_bindings.py)."""


class _FlagRows(InlineBindings):
    """The rows, drawn as one piece of content: cheap to redraw on every toggle."""

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Previous flag", show=False),
        Binding("down", "move(1)", "Next flag", show=False),
        Binding("space", "toggle_highlighted", "Toggle flag", show=False),
    ]

    def __init__(self, panel: FlagPanel) -> None:
        super().__init__(classes="flag-panel--rows")
        self._panel = panel

    def render(self) -> Content:
        return self._panel.render_rows()

    def action_move(self, step: int) -> None:
        self._panel.move_highlight(step)

    def action_toggle_highlighted(self) -> None:
        flag = self._panel.highlighted
        if flag is not None:
            self._panel.toggle(flag)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


class FlagPanel(Vertical):
    """Flags with their keys; a required supervisor note while an escalation flag is on."""

    DEFAULT_CSS = """
    FlagPanel {
        height: auto;
        width: 1fr;
        & > .flag-panel--rows {
            height: auto;
            padding: 0 1;
            text-wrap: nowrap;
            text-overflow: ellipsis;
        }
        & .flag-panel--key {
            color: $text-muted;
        }
        & .flag-panel--on {
            color: $text-success;
            text-style: bold;
        }
        & .flag-panel--off {
            color: $text-muted;
        }
        & .flag-panel--escalation {
            color: $text-warning;
            text-style: bold;
        }
        & .flag-panel--definition {
            color: $text-muted;
        }
        & .flag-panel--highlight {
            background: $accent 30%;
        }
        & > .flag-panel--note-row {
            height: 1;
            padding: 0 1;
            display: none;
            &.-required {
                display: block;
            }
            & > Label {
                color: $text-warning;
                text-style: bold;
                width: auto;
                padding-right: 1;
            }
            & > Input {
                width: 1fr;
            }
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "flag-panel--key",
        "flag-panel--on",
        "flag-panel--off",
        "flag-panel--escalation",
        "flag-panel--definition",
        "flag-panel--highlight",
    }

    @dataclass
    class Changed(Message):
        """The annotator toggled a flag or edited the note."""

        panel: FlagPanel
        flags: frozenset[str]
        note: str

        @property
        def control(self) -> FlagPanel:
            return self.panel

    flags: reactive[frozenset[str]] = reactive(frozenset, init=False)
    """Ids of the flags that are on."""

    def __init__(
        self,
        flags: Iterable[FlagDef] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._defs: dict[str, FlagDef] = {f.id: f for f in flags}
        self._key_hints: dict[str, str] = {}
        self._highlight = 0
        self._rows = _FlagRows(self)
        self._note_input = _NoteInput(
            placeholder=NOTE_OPTIONAL_PLACEHOLDER, compact=True, max_length=2000
        )
        self._note_row = Horizontal(
            Label("note ›"), self._note_input, classes="flag-panel--note-row"
        )

    def compose(self) -> ComposeResult:
        yield self._rows
        yield self._note_row

    # ------------------------------------------------------------------ public API

    @property
    def note(self) -> str:
        return self._note_input.value

    @note.setter
    def note(self, note: str) -> None:
        # Programmatic (restoring a draft): like `flags`, it posts nothing.
        with self._note_input.prevent(Input.Changed):
            self._note_input.value = note

    @property
    def escalated(self) -> frozenset[str]:
        return frozenset(f for f in self.flags if (d := self._defs.get(f)) and d.escalation)

    @property
    def note_required(self) -> bool:
        return bool(self.escalated)

    def set_flags(self, flags: Iterable[FlagDef]) -> None:
        self._defs = {f.id: f for f in flags}
        self.flags = frozenset(f for f in self.flags if f in self._defs)
        self._rows.refresh(layout=True)

    def set_key_hints(self, hints: Mapping[str, str]) -> None:
        self._key_hints = dict(hints)
        self._rows.refresh()

    def toggle(self, flag_id: str) -> None:
        if flag_id not in self._defs:
            raise ValueError(f"unknown flag {flag_id!r}")
        self.flags = self.flags ^ {flag_id}
        self.post_message(self.Changed(self, self.flags, self.note))

    def reset(self) -> None:
        self.flags = frozenset()
        with self._note_input.prevent(Input.Changed):
            self._note_input.value = ""

    def focus_note(self) -> None:
        self._note_row.add_class("-required")
        self._note_input.focus()

    @property
    def rows(self) -> Widget:
        """The focusable flag rows (for `Screen.set_focus`, which moves focus at once)."""
        return self._rows

    def focus_rows(self) -> None:
        self._rows.focus()

    @property
    def highlighted(self) -> str | None:
        ids = list(self._defs)
        return ids[min(self._highlight, len(ids) - 1)] if ids else None

    def move_highlight(self, step: int) -> None:
        if self._defs:
            self._highlight = (self._highlight + step) % len(self._defs)
            self._rows.refresh()

    # ------------------------------------------------------------------ internals

    def watch_flags(self) -> None:
        required = self.note_required
        self._note_row.set_class(required, "-required")
        self._note_input.placeholder = NOTE_PLACEHOLDER if required else NOTE_OPTIONAL_PLACEHOLDER
        self._rows.refresh()

    def render_rows(self) -> Content:
        """One line per flag: key, mark, id, definition."""
        key_style = self.get_visual_style("flag-panel--key", partial=True)
        on_style = self.get_visual_style("flag-panel--on", partial=True)
        off_style = self.get_visual_style("flag-panel--off", partial=True)
        escalation_style = self.get_visual_style("flag-panel--escalation", partial=True)
        definition_style = self.get_visual_style("flag-panel--definition", partial=True)
        highlight = self.highlighted if self._rows.has_focus else None
        highlight_style = self.get_visual_style("flag-panel--highlight", partial=True)
        key_width = max((len(h) for h in self._key_hints.values()), default=0)
        id_width = max((len(f) for f in self._defs), default=0)
        lines: list[Content] = []
        for flag in self._defs.values():
            on = flag.id in self.flags
            parts: list[Content | str | tuple[str, str | Style]] = []
            if key_width:
                parts.append((self._key_hints.get(flag.id, "").ljust(key_width) + " ", key_style))
            parts.append(("● " if on else "○ ", on_style if on else off_style))
            name_style = escalation_style if flag.escalation else (on_style if on else "")
            parts.append((flag.id.ljust(id_width), name_style))
            parts.append(("  " + for_terminal(flag.definition), definition_style))
            line = Content.assemble(*parts)
            if flag.id == highlight:
                line = line.stylize(highlight_style)
            lines.append(line)
        return Content("\n").join(lines)

    @on(Input.Changed)
    def _note_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self, self.flags, event.value))
