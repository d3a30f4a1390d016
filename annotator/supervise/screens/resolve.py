"""Resolve an escalation: pick an outcome (the taxonomy's `outcomes`), write the required note.

Digits pick an outcome and move to the note; arrows + Enter work too; Enter in the note resolves;
Escape cancels. A blank note is refused in place (the server would refuse it too: a resolution
says what was done and why).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from api.models import MAX_NOTE_CHARS, OutcomeDef
from api.text_safety import check_text, for_terminal
from widgets.inline_bindings import InlineBindings


def _label(outcome: OutcomeDef) -> str:
    return f"{for_terminal(outcome.id.replace('_', ' '))} — {for_terminal(outcome.definition)}"


class _Outcomes(OptionList, InlineBindings):
    """The arrows move the highlight in typing order (see widgets/inline_bindings.py)."""


class _Note(Input, InlineBindings):
    """Editing keys act among the characters typed around them."""


class ResolveScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (outcome id, note), or None when cancelled."""

    DEFAULT_CSS = """
    ResolveScreen { align: center middle; }
    ResolveScreen > Vertical {
        width: 76; height: auto; padding: 1 2;
        border: thick $accent; background: $surface;
    }
    ResolveScreen OptionList { height: auto; max-height: 10; }
    ResolveScreen .hint { color: $text-muted; }
    ResolveScreen #resolve-error { color: $text-error; text-style: bold; }
    """

    # Priority, so they act the moment they are routed (annotator/typeahead.py); a digit picks
    # only while the note is not being written (`check_action`), else it is the note's text.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", show=False, priority=True),
        *(Binding(str(i), f"pick({i - 1})", show=False, priority=True) for i in range(1, 10)),
    ]
    AUTO_FOCUS = "#resolve-outcomes"

    def __init__(self, outcomes: list[OutcomeDef], title: str) -> None:
        super().__init__()
        self._outcomes = outcomes
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Resolve: {for_terminal(self._title)}", markup=False)
            yield _Outcomes(
                *(
                    Option(f"{i}  {_label(o)}", id=o.id)
                    for i, o in enumerate(self._outcomes, start=1)
                ),
                id="resolve-outcomes",
            )
            yield Label("Note (required): what was done and why", markup=False)
            yield _Note(
                placeholder="e.g. called the on-call lead, referred per policy",
                max_length=MAX_NOTE_CHARS,
                id="resolve-note",
            )
            yield Label("", id="resolve-error", markup=False)
            yield Label(
                f"1–{len(self._outcomes)} or ↑↓ Enter picks · Enter in the note resolves · "
                "Esc cancels",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(_Outcomes).highlighted = 0

    @property
    def outcome(self) -> str | None:
        index = self.query_one(_Outcomes).highlighted
        return self._outcomes[index].id if index is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick":
            index = parameters[0] if parameters else -1
            note = self.query(_Note)
            writing = bool(note) and note.first().has_focus
            return not writing and isinstance(index, int) and index < len(self._outcomes)
        return True

    def action_pick(self, index: int) -> None:
        self.query_one(_Outcomes).highlighted = index
        self.query_one(_Note).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one(_Note).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        note = event.value.strip()
        error = self.query_one("#resolve-error", Label)
        if not note:
            error.update("A resolution needs a note: say what was done and why.")
            return
        problem = check_text(note)
        if problem is not None:
            error.update(for_terminal(problem))
            return
        outcome = self.outcome
        if outcome is None:
            error.update("Pick an outcome first (1–4 or ↑↓).")
            return
        self.dismiss((outcome, note))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
