"""Skip with a reason: a one-keystroke choice of why this clip goes back to the queue."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from api.models import ReleaseReason
from widgets.inline_bindings import InlineBindings

#: Reasons an annotator may give (UNUSED is the client's own, for clips never shown).
SKIP_REASONS: tuple[tuple[ReleaseReason, str], ...] = (
    (ReleaseReason.SKIPPED, "skip: not for me right now"),
    (ReleaseReason.BROKEN_AUDIO, "broken audio: will not play or is damaged"),
    (ReleaseReason.WRONG_LOCALE, "wrong language or locale"),
    (ReleaseReason.CANNOT_JUDGE, "cannot judge: need a supervisor's view"),
    (ReleaseReason.OTHER, "other"),
)


class _Reasons(OptionList, InlineBindings):
    """The arrows move the highlight in typing order (see widgets/inline_bindings.py)."""


class SkipScreen(ModalScreen[ReleaseReason | None]):
    """Digits pick a reason at once; arrows + Enter work too; Escape cancels.

    The keys that close it are priority bindings, so they act the moment they are routed and the
    keys typed after them reach the next clip (annotator/typeahead.py)."""

    DEFAULT_CSS = """
    SkipScreen { align: center middle; }
    SkipScreen > Vertical {
        width: 60; height: auto; padding: 1 2;
        border: thick $accent; background: $surface;
    }
    SkipScreen OptionList { height: auto; max-height: 10; }
    SkipScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", show=False, priority=True),
        Binding("enter", "choose", "Skip", show=False, priority=True),
        *(
            Binding(str(i), f"pick({i - 1})", show=False, priority=True)
            for i in range(1, len(SKIP_REASONS) + 1)
        ),
    ]

    def __init__(self, *, suggested: ReleaseReason | None = None) -> None:
        super().__init__()
        self._suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Skip this clip[/b] — why?")
            yield _Reasons(
                *(
                    Option(f"{i}  {text}", id=reason.value)
                    for i, (reason, text) in enumerate(SKIP_REASONS, start=1)
                ),
                id="skip-reasons",
            )
            yield Label("1–5 or ↑↓ Enter · Esc to keep annotating", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self._suggested is not None:
            options.highlighted = [r for r, _ in SKIP_REASONS].index(self._suggested)
        else:
            options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # a click; Enter is the `choose` binding
        if event.option.id is not None:
            self.dismiss(ReleaseReason(event.option.id))

    def action_choose(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None:
            self.dismiss(SKIP_REASONS[highlighted][0])

    def action_pick(self, index: int) -> None:
        self.dismiss(SKIP_REASONS[index][0])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
