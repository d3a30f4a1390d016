"""Skip with a reason: a one-keystroke choice of why this clip goes back to the queue.

"other" asks for a few words of why (sent with the release as its `detail`): Enter sends, Esc goes
back to the list. The screen's result is a `SkipChoice`, or None when the annotator kept the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from api.models import ReleaseReason
from api.text_safety import check_text
from widgets.inline_bindings import InlineBindings

#: The server keeps at most this much of a release's detail.
MAX_DETAIL = 500

#: Reasons an annotator may give (UNUSED is the client's own, for clips never shown).
SKIP_REASONS: tuple[tuple[ReleaseReason, str], ...] = (
    (ReleaseReason.SKIPPED, "skip: not for me right now"),
    (ReleaseReason.BROKEN_AUDIO, "broken audio: will not play or is damaged"),
    (ReleaseReason.WRONG_LOCALE, "wrong language or locale"),
    (ReleaseReason.CANNOT_JUDGE, "cannot judge: need a supervisor's view"),
    (ReleaseReason.OTHER, "other"),
)


@dataclass(frozen=True, slots=True)
class SkipChoice:
    reason: ReleaseReason
    detail: str | None = None


class _Reasons(OptionList, InlineBindings):
    """The arrows move the highlight in typing order (see widgets/inline_bindings.py)."""


class _Why(Input, InlineBindings):
    """The free-text reason for "other": Enter sends it at once (no message behind the key)."""

    def __init__(self, screen: SkipScreen) -> None:
        super().__init__(
            placeholder="why? a few words for the queue owner · Enter skips · Esc goes back",
            max_length=MAX_DETAIL,
            id="skip-why",
        )
        self._skip_screen = screen

    async def action_submit(self) -> None:
        self._skip_screen.send_other()


class SkipScreen(ModalScreen[SkipChoice | None]):
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
    SkipScreen #skip-why { display: none; margin-top: 1; }
    SkipScreen #skip-why.-shown { display: block; }
    SkipScreen #skip-why-error { display: none; color: $text-error; }
    SkipScreen #skip-why-error.-shown { display: block; }
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
            yield _Why(self)
            yield Label("", id="skip-why-error", markup=False)
            yield Label("1–5 or ↑↓ Enter · Esc to keep annotating", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self._suggested is not None:
            options.highlighted = [r for r, _ in SKIP_REASONS].index(self._suggested)
        else:
            options.highlighted = 0

    @property
    def asking_why(self) -> bool:
        return self.query_one(_Why).has_class("-shown")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the reason is typed, digits and Enter belong to it.
        return not (action in ("pick", "choose") and self.asking_why)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # a click; Enter is the `choose` binding
        if event.option.id is not None:
            self._chosen(ReleaseReason(event.option.id))

    def action_choose(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None:
            self._chosen(SKIP_REASONS[highlighted][0])

    def action_pick(self, index: int) -> None:
        self._chosen(SKIP_REASONS[index][0])

    def _chosen(self, reason: ReleaseReason) -> None:
        if reason is not ReleaseReason.OTHER:
            self.dismiss(SkipChoice(reason))
            return
        why = self.query_one(_Why)
        why.add_class("-shown")
        self.set_focus(why)  # now: the next key typed is the reason's first letter

    def send_other(self) -> None:
        text = " ".join(self.query_one(_Why).value.split())
        problem = "type a few words of why" if not text else check_text(text)
        if problem is not None:
            error = self.query_one("#skip-why-error", Label)
            error.update(problem)
            error.add_class("-shown")
            return
        self.dismiss(SkipChoice(ReleaseReason.OTHER, text))

    def action_dismiss_none(self) -> None:
        if self.asking_why:
            self.query_one(_Why).remove_class("-shown")
            self.query_one("#skip-why-error").remove_class("-shown")
            self.set_focus(self.query_one(OptionList))
            return
        self.dismiss(None)
