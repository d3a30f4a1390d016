"""`IntentPicker`: type to find an intent by id or meaning, ↑/↓ + Enter to pick, 1–9 on fixed keys.

Layout (about 9 rows): the picked intent on top ("intent: weather_query"), a one-line filter
Input, and a short scrolling OptionList. Focus stays in the Input: ↑/↓/PgUp/PgDn move the list
highlight, Enter picks the highlighted intent (the best match right after typing), Esc empties
the filter. Enter with nothing matching says so and picks nothing.

The filter searches ids and the intents' descriptions and example phrasings (`intent_search`),
so "remind" finds `calendar_set`; a hit found in the meaning shows the phrase it was found in.

Digits never move while the annotator works (muscle memory):
- 1–3 are this clip's server suggestions (`set_suggestions`, best first; a missing one leaves
  its digit empty rather than shifting the others);
- 4–9 are the shift's most used intents (`set_frequent`), changed only when the screen asks
  (between sessions, or on the annotator's own key).
Digits pick whenever no intent id contains a digit (the default taxonomy's don't); otherwise only
while the filter is empty. The unfiltered list shows the numbered rows first, in digit order,
then the "none of these" intents (scenario `meta`: `no_speech`, `not_device_directed`), then the
rest in taxonomy order.

Constructor: `IntentPicker(intents=(), frequent=(), *, name, id, classes)`.

Reactives:
    value (str | None): the picked intent id. Setting it directly (e.g. restoring a draft) posts
        no message; `pick()` does.
    filter_text (str): the filter as typed (read it; the Input owns it).

Methods:
    set_intents(list[IntentDef]): the taxonomy's intents (order kept when unfiltered).
    set_suggestions(list[str]): the clip's suggestions for 1–3 (unknown ids ignored).
    set_frequent(list[str]): the intents for 4–9, most used first (unknown ids ignored).
    digit_intent(n) -> str | None: what digit n picks now.
    pick(intent_id): set `value` and post `Picked`; raises ValueError for an unknown id.
    auto_pick(intent_id, why): pick on the annotator's behalf (a flag that implies the intent),
        shown with `why` until the annotator picks something else; posts `Picked`.
    reset(): clear the value and the filter (next clip); reset_value() keeps the filter.
    pick_highlighted(), pick_digit(n): what Enter and digit n in the filter do.
    focus(): focuses the filter Input.

Properties: `suggestions`, `frequent`, `highlighted`, `auto_reason` (None unless auto-picked).

Messages:
    IntentPicker.Picked(picker, intent_id): an intent was picked (Enter, a digit, `pick()` or
        `auto_pick()`).

Key order: the filter's keys (editing, arrows, Enter, Esc, digits) act while the key is handled
(`InlineBindings`, and direct calls instead of messages), so a burst such as "wea", Down, Enter,
ctrl+s picks what was highlighted when Enter was typed and a submit typed after it sees the pick.

Component classes: intent-picker--recent-key (the digit badge), intent-picker--description.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from textual import events, on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.style import Style
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from api.models import IntentDef
from api.text_safety import for_terminal
from widgets.inline_bindings import InlineBindings
from widgets.intent_search import IntentHit, rank_intents

__all__ = [
    "FREQUENT_DIGITS",
    "SUGGESTED_DIGITS",
    "IntentPicker",
    "rank_intents",
]

SUGGESTED_DIGITS = (1, 2, 3)
FREQUENT_DIGITS = (4, 5, 6, 7, 8, 9)
#: The scenario of the "none of these" intents, listed right after the numbered ones.
META_SCENARIO = "meta"


class _FilterInput(Input, InlineBindings):
    """The filter box. Every key that changes the pick acts while the key is handled, never in a
    message behind it, so keys typed after Enter or a digit cannot overtake it: the arrows move
    the list, Enter picks, Esc empties the filter, and digits pick when the picker says so."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor('up')", "Previous intent", show=False),
        Binding("down", "cursor('down')", "Next intent", show=False),
        Binding("pageup", "cursor('page_up')", "Page up", show=False),
        Binding("pagedown", "cursor('page_down')", "Page down", show=False),
        Binding("escape", "clear_filter", "Clear the filter", show=False),
    ]

    def __init__(self, picker: IntentPicker) -> None:
        super().__init__(
            placeholder="type a name or what was asked · ↑↓ Enter · Esc clears · 1–3 suggested",
            compact=True,
            classes="intent-picker--filter",
        )
        self._picker = picker

    async def _on_key(self, event: events.Key) -> None:
        character = event.character
        if character is not None and character in "123456789" and self._picker.digits_pick():
            event.stop()
            # Stops Input's own _on_key (dispatched after this one) from typing the digit.
            event.prevent_default()
            self._picker.pick_digit(int(character))

    def action_cursor(self, direction: str) -> None:
        self._picker.action_cursor(direction)

    def action_clear_filter(self) -> None:
        if not self.value:
            raise SkipAction()  # nothing to clear: Escape means something further up
        self.value = ""

    async def action_submit(self) -> None:
        self._picker.pick_highlighted()


class IntentPicker(Vertical):
    """Intent picker: search by id or meaning, suggestions on 1–3, the shift's usual on 4–9."""

    DEFAULT_CSS = """
    IntentPicker {
        height: auto;
        width: 1fr;
        & > .intent-picker--value {
            height: 1;
            padding: 0 1;
            text-style: bold;
            color: $text-accent;
            &.-empty {
                color: $text-muted;
                text-style: none;
            }
        }
        & > .intent-picker--filter {
            height: 1;
            margin: 0 1;
        }
        & > OptionList {
            height: 7;
            border: none;
            padding: 0;
            background: $surface;
            scrollbar-size-vertical: 1;
            /* One line per intent: a long description is cut, never wrapped onto a second. */
            text-wrap: nowrap;
            text-overflow: ellipsis;
        }
        & .intent-picker--recent-key {
            color: $text-warning;
            text-style: bold;
        }
        & .intent-picker--description {
            color: $text-muted;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "intent-picker--recent-key",
        "intent-picker--description",
    }

    @dataclass
    class Picked(Message):
        """The annotator picked an intent."""

        picker: IntentPicker
        intent_id: str

        @property
        def control(self) -> IntentPicker:
            return self.picker

    value: reactive[str | None] = reactive(None, init=False)
    """The picked intent id, or None."""
    filter_text: reactive[str] = reactive("", init=False)
    """The filter as typed (the Input owns it; read-only for callers)."""

    def __init__(
        self,
        intents: Iterable[IntentDef] = (),
        frequent: Sequence[str] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._intents: dict[str, IntentDef] = {i.id: i for i in intents}
        self._suggested: list[str] = []
        self._frequent: list[str] = []
        self._auto: str | None = None
        self._value_label = Static("", classes="intent-picker--value -empty", markup=False)
        self._input = _FilterInput(self)
        self._list = OptionList()
        # Focus never leaves the Input: the list is driven by the picker's bindings.
        self._list.can_focus = False
        # The list is rebuilt at most once per turn of the message loop (a clip change asks
        # several times: value, filter, suggestions), and only when what it shows changed.
        self._stale = False
        self._shown: tuple[object, ...] | None = None
        #: Option id -> intent id (a numbered row's option id is "n:intent", so an intent that is
        #: both suggested and frequent can sit on both of its digits).
        self._option_intent: dict[str, str] = {}
        #: Unfiltered options by (option id, number, picked): reused with their rendered visuals,
        #: so the list a new clip starts with costs no layout of 62 prompts.
        self._plain_options: dict[tuple[str, int | None, bool], Option] = {}
        self._frequent = self._known(frequent, len(FREQUENT_DIGITS))

    def compose(self) -> ComposeResult:
        yield self._value_label
        yield self._input
        yield self._list

    def on_mount(self) -> None:
        self._show_value()
        self._rebuild(mounting=True)

    # ------------------------------------------------------------------ public API

    @property
    def suggestions(self) -> list[str]:
        return list(self._suggested)

    @property
    def frequent(self) -> list[str]:
        return list(self._frequent)

    @property
    def auto_reason(self) -> str | None:
        """Why the intent was picked on the annotator's behalf, or None."""
        return self._auto

    @property
    def highlighted(self) -> str | None:
        """The intent Enter would pick now."""
        self._flush()
        option = self._list.highlighted_option
        if option is None or option.id is None:
            return None
        return self._option_intent.get(option.id)

    def set_intents(self, intents: Iterable[IntentDef]) -> None:
        self._intents = {i.id: i for i in intents}
        self._suggested = self._known(self._suggested, len(SUGGESTED_DIGITS))
        self._frequent = self._known(self._frequent, len(FREQUENT_DIGITS))
        self._plain_options.clear()
        self._shown = None
        self._rebuild()

    def set_suggestions(self, suggested: Sequence[str]) -> None:
        self._suggested = self._known(suggested, len(SUGGESTED_DIGITS))
        self._rebuild()

    def set_frequent(self, frequent: Sequence[str]) -> None:
        self._frequent = self._known(frequent, len(FREQUENT_DIGITS))
        self._rebuild()

    def digit_intent(self, number: int) -> str | None:
        return self._digits().get(number)

    def pick(self, intent_id: str) -> None:
        if self._intents and intent_id not in self._intents:
            raise ValueError(f"unknown intent {intent_id!r}")
        self._auto = None
        if self.value == intent_id:
            self._show_value()  # same value: the watcher will not run, the label still changes
        self.value = intent_id
        self.post_message(self.Picked(self, intent_id))

    def auto_pick(self, intent_id: str, why: str) -> None:
        self.pick(intent_id)
        self._auto = why
        self._show_value()

    def reset(self) -> None:
        self.reset_value()
        self._input.value = ""

    def reset_value(self) -> None:
        """Clear the picked intent (and its auto reason), keeping the filter."""
        self._auto = None
        if self.value is None:
            self._show_value()
        self.value = None

    def focus(self, scroll_visible: bool = True) -> Self:
        self._input.focus(scroll_visible)
        return self

    def digits_pick(self) -> bool:
        """Whether a digit typed in the filter picks an intent (else it is typed)."""
        if not self._input.value:
            return True
        return not any(ch.isdigit() for intent_id in self._intents for ch in intent_id)

    def pick_highlighted(self) -> None:
        """Enter in the filter: pick the highlighted intent and clear the filter."""
        intent_id = self.highlighted
        if intent_id is None:
            self.app.bell()
            query = self._input.value.strip()
            self.notify(
                f"No intent matches {query!r}: Esc clears the filter."
                if query
                else "No intent to pick.",
                title="Nothing picked",
                severity="warning",
                timeout=3,
                markup=False,
            )
            return
        self._input.value = ""
        self.pick(intent_id)

    def pick_digit(self, number: int) -> None:
        """A digit in the filter: pick what that digit holds (see the module docstring)."""
        intent_id = self.digit_intent(number)
        if intent_id is None:
            self.app.bell()
            what = (
                "the server suggested no intent there for this clip"
                if number in SUGGESTED_DIGITS
                else "no intent is used often enough yet to sit there"
            )
            self.notify(f"{number}: {what}.", timeout=2, markup=False)
            return
        self.pick(intent_id)

    # ------------------------------------------------------------------ internals

    def _known(self, ids: Sequence[str], limit: int) -> list[str]:
        seen: list[str] = []
        for intent_id in ids:
            if intent_id not in seen and (not self._intents or intent_id in self._intents):
                seen.append(intent_id)
        return seen[:limit]

    def _digits(self) -> dict[int, str]:
        digits = dict(zip(SUGGESTED_DIGITS, self._suggested, strict=False))
        digits.update(zip(FREQUENT_DIGITS, self._frequent, strict=False))
        return digits

    def _prompt(
        self,
        intent_id: str,
        label: Content,
        number: int | None,
        picked: bool,
        styles: tuple[Style, Style],
        because: Content | None = None,
    ) -> Content:
        key_style, description_style = styles
        parts: list[Content | str | tuple[str, str | Style]] = [
            (f"{number} ", key_style) if number is not None else "  ",
            label,
        ]
        if picked:
            parts.append(" ✓")
        if because is not None:
            parts.append(("  ", description_style))
            parts.append(because.stylize_before(description_style))
        else:
            intent = self._intents.get(intent_id)
            # Only descriptions that add meaning to the id.
            if intent and intent.description and intent.description != intent_id.replace("_", " "):
                parts.append(("  " + for_terminal(intent.description), description_style))
        return Content.assemble(*parts)

    def _rebuild(self, *, mounting: bool = False) -> None:
        """Ask for the list to follow the filter, the digits and the value: once, on the
        next turn of the message loop (or sooner, when something reads the list)."""
        if mounting:
            self._stale = True
            self._flush()
            return
        if not self.is_mounted:
            return  # prompts need the resolved component styles: on_mount does the first build
        if not self._stale:
            self._stale = True
            self.call_later(self._flush)

    def _flush(self) -> None:
        if not self._stale:
            return
        self._stale = False
        query = self._input.value
        filtered = bool(query.strip())
        styles = (
            self.get_visual_style("intent-picker--recent-key", partial=True),
            self.get_visual_style("intent-picker--description", partial=True),
        )
        digits = self._digits()
        shown = (query if filtered else "", tuple(sorted(digits.items())), self.value, styles)
        if shown == self._shown:
            return
        if self._shown is not None and self._shown[3] != styles:
            self._plain_options.clear()  # the cached prompts hold the old resolved styles
        self._shown = shown
        options = self._filtered(query, digits, styles) if filtered else self._plain(digits, styles)
        self._list.set_options(options)
        self._list.highlighted = 0 if options and not options[0].disabled else None

    def _filtered(
        self, query: str, digits: dict[int, str], styles: tuple[Style, Style]
    ) -> list[Option]:
        number_of: dict[str, int] = {}
        for number, intent_id in sorted(digits.items()):
            number_of.setdefault(intent_id, number)
        hits: list[IntentHit] = rank_intents(query, list(self._intents.values()))
        self._option_intent = {hit.intent_id: hit.intent_id for hit in hits}
        if not hits:
            text = f"no intent matches {query.strip()!r} — Esc clears the filter"
            return [Option(Content.styled(text, styles[1]), disabled=True)]
        return [
            Option(
                self._prompt(
                    hit.intent_id,
                    hit.label,
                    number_of.get(hit.intent_id),
                    hit.intent_id == self.value,
                    styles,
                    hit.because,
                ),
                id=hit.intent_id,
            )
            for hit in hits
        ]

    def _plain(self, digits: dict[int, str], styles: tuple[Style, Style]) -> list[Option]:
        # The numbered rows in digit order, then "none of these", then the taxonomy's order.
        rows: list[tuple[str, str, int | None]] = [
            (f"{n}:{intent_id}", intent_id, n) for n, intent_id in sorted(digits.items())
        ]
        numbered = set(digits.values())
        meta = [
            i for i, d in self._intents.items() if d.scenario == META_SCENARIO and i not in numbered
        ]
        rest = [i for i in self._intents if i not in numbered and i not in meta]
        rows.extend((i, i, None) for i in [*meta, *rest])
        self._option_intent = {option_id: intent_id for option_id, intent_id, _ in rows}
        return [self._plain_option(*row, styles) for row in rows]

    def _plain_option(
        self, option_id: str, intent_id: str, number: int | None, styles: tuple[Style, Style]
    ) -> Option:
        key = (option_id, number, intent_id == self.value)
        option = self._plain_options.get(key)
        if option is None:
            prompt = self._prompt(intent_id, Content(intent_id), number, key[2], styles)
            option = self._plain_options[key] = Option(prompt, id=option_id)
        return option

    def notify_style_update(self) -> None:
        # The prompts hold resolved styles: a theme change must draw them again.
        super().notify_style_update()
        self._rebuild()

    def _show_value(self) -> None:
        label = self._value_label
        if self.value is None:
            label.update("intent: —")
            label.add_class("-empty")
        else:
            why = f" ({self._auto})" if self._auto else ""
            label.update(f"intent: {self.value}{why}")
            label.remove_class("-empty")

    def watch_value(self) -> None:
        if self.is_mounted:
            self._show_value()
            self._rebuild()

    def action_cursor(self, direction: str) -> None:
        self._flush()
        option_list = self._list
        if direction == "up":
            option_list.action_cursor_up()
        elif direction == "down":
            option_list.action_cursor_down()
        elif option_list.option_count:
            page = max(1, option_list.scrollable_content_region.height - 1)
            step = -page if direction == "page_up" else page
            current = option_list.highlighted or 0
            option_list.highlighted = min(option_list.option_count - 1, max(0, current + step))

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self._rebuild()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        intent_id = self._option_intent.get(event.option.id or "")
        if intent_id is not None:
            self.pick(intent_id)
