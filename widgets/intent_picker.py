"""`IntentPicker`: type to fuzzy-filter the intents, ↑/↓ + Enter to pick, 1–9 for recent ones.

Layout (about 9 rows): the picked intent on top ("intent: weather_query"), a one-line filter
Input, and a short scrolling OptionList. Focus stays in the Input: ↑/↓/PgUp/PgDn move the list
highlight, Enter picks the highlighted intent (the best match right after typing).

Digits 1–9 pick recent intent N instead of typing the digit, whenever no intent id contains a
digit (the default taxonomy's don't); otherwise only while the filter is empty.

Constructor: `IntentPicker(intents=(), recent=(), *, name, id, classes)`.

Reactives:
    value (str | None): the picked intent id. Setting it directly (e.g. restoring a draft) posts
        no message; `pick()` does.
    filter_text (str): the filter as typed (read it; the Input owns it).

Methods:
    set_intents(list[IntentDef]): the taxonomy's intents (order kept when unfiltered).
    set_recent(list[str]): recently used ids, most recent first (only the first 9 get keys;
        unknown ids are ignored).
    remember(intent_id) -> list[str]: move an id to the front of the recent list and return the
        new list (for the App to persist after a submit).
    pick(intent_id): set `value` and post `Picked`; raises ValueError for an unknown id.
    reset(): clear the value and the filter (next clip).
    pick_highlighted(), pick_recent(n): what Enter and digit n in the filter do.
    focus(): focuses the filter Input.

Messages:
    IntentPicker.Picked(picker, intent_id): the annotator picked an intent (Enter, a digit, or
        `pick()`).

Key order: the filter's keys (editing, arrows, Enter, digits) act while the key is handled
(`InlineBindings`, and direct calls instead of messages), so a burst such as "wea", Down, Enter,
ctrl+s picks what was highlighted when Enter was typed and a submit typed after it sees the pick.

Component classes: intent-picker--recent-key (the 1–9 badge), intent-picker--description.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.fuzzy import Matcher
from textual.message import Message
from textual.reactive import reactive
from textual.style import Style
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from api.models import IntentDef
from api.text_safety import for_terminal
from widgets.inline_bindings import InlineBindings

__all__ = ["MAX_RECENT", "IntentPicker", "rank_intents"]

MAX_RECENT = 9
_MATCH_STYLE = Style(bold=True, underline=True)


def rank_intents(query: str, intent_ids: Sequence[str]) -> list[tuple[str, Content]]:
    """Intents matching `query`, best first, each with its id highlighted where it matched.

    Blanks in the query are ignored, so "light off" finds `iot_hue_lightoff`. An empty query keeps
    every intent in its given order. Ties keep the given order.
    """
    query = "".join(query.split())
    if not query:
        return [(intent_id, Content(intent_id)) for intent_id in intent_ids]
    matcher = Matcher(query, match_style=_MATCH_STYLE)
    scored = [
        (matcher.match(intent_id), index, intent_id) for index, intent_id in enumerate(intent_ids)
    ]
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    return [(intent_id, matcher.highlight(intent_id)) for _, _, intent_id in ranked]


class _FilterInput(Input, InlineBindings):
    """The filter box. Every key that changes the pick acts while the key is handled, never in a
    message behind it, so keys typed after Enter or a digit cannot overtake it: the arrows move
    the list, Enter picks, and digits pick "recent N" when the picker says so."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor('up')", "Previous intent", show=False),
        Binding("down", "cursor('down')", "Next intent", show=False),
        Binding("pageup", "cursor('page_up')", "Page up", show=False),
        Binding("pagedown", "cursor('page_down')", "Page down", show=False),
    ]

    def __init__(self, picker: IntentPicker) -> None:
        super().__init__(
            placeholder="type to filter · ↑↓ Enter · 1–9 recent",
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
            self._picker.pick_recent(int(character))

    def action_cursor(self, direction: str) -> None:
        self._picker.action_cursor(direction)

    async def action_submit(self) -> None:
        self._picker.pick_highlighted()


class IntentPicker(Vertical):
    """Fuzzy intent picker with recent intents on the number keys."""

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
        recent: Sequence[str] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._intents: dict[str, IntentDef] = {i.id: i for i in intents}
        self._recent: list[str] = []
        self._value_label = Static("", classes="intent-picker--value -empty", markup=False)
        self._input = _FilterInput(self)
        self._list = OptionList()
        # Focus never leaves the Input: the list is driven by the picker's bindings.
        self._list.can_focus = False
        # The list is rebuilt at most once per turn of the message loop (a clip change asks three
        # times: value, filter, recent), and only when what it shows changed.
        self._stale = False
        self._shown: tuple[object, ...] | None = None
        #: Unfiltered options by (intent id, recent number, picked): reused with their rendered
        #: visuals, so the list a new clip starts with costs no layout of 62 prompts.
        self._plain_options: dict[tuple[str, int | None, bool], Option] = {}
        self._set_recent(recent)

    def compose(self) -> ComposeResult:
        yield self._value_label
        yield self._input
        yield self._list

    def on_mount(self) -> None:
        self._show_value()
        self._rebuild(mounting=True)

    # ------------------------------------------------------------------ public API

    @property
    def recent(self) -> list[str]:
        """Recently used intent ids, most recent first (at most 9)."""
        return list(self._recent)

    @property
    def highlighted(self) -> str | None:
        """The intent Enter would pick now."""
        self._flush()
        option = self._list.highlighted_option
        return option.id if option is not None else None

    def set_intents(self, intents: Iterable[IntentDef]) -> None:
        self._intents = {i.id: i for i in intents}
        self._set_recent(self._recent)
        self._plain_options.clear()
        self._shown = None
        self._rebuild()

    def set_recent(self, recent: Sequence[str]) -> None:
        self._set_recent(recent)
        self._rebuild()

    def remember(self, intent_id: str) -> list[str]:
        self.set_recent([intent_id, *(r for r in self._recent if r != intent_id)])
        return self.recent

    def pick(self, intent_id: str) -> None:
        if self._intents and intent_id not in self._intents:
            raise ValueError(f"unknown intent {intent_id!r}")
        self.value = intent_id
        self.post_message(self.Picked(self, intent_id))

    def reset(self) -> None:
        self.value = None
        self._input.value = ""

    def focus(self, scroll_visible: bool = True) -> Self:
        self._input.focus(scroll_visible)
        return self

    # ------------------------------------------------------------------ internals

    def _set_recent(self, recent: Sequence[str]) -> None:
        known = self._intents
        seen: list[str] = []
        for intent_id in recent:
            if intent_id not in seen and (not known or intent_id in known):
                seen.append(intent_id)
        self._recent = seen[:MAX_RECENT]

    def digits_pick(self) -> bool:
        """Whether a digit typed in the filter picks a recent intent (else it is typed)."""
        if not self._input.value:
            return True
        return not any(ch.isdigit() for intent_id in self._intents for ch in intent_id)

    def _prompt(
        self,
        intent_id: str,
        label: Content,
        number: int | None,
        picked: bool,
        styles: tuple[Style, Style],
    ) -> Content:
        key_style, description_style = styles
        parts: list[Content | str | tuple[str, str | Style]] = [
            (f"{number} ", key_style) if number is not None else "  ",
            label,
        ]
        if picked:
            parts.append(" ✓")
        intent = self._intents.get(intent_id)
        # The default taxonomy's descriptions just spell the id; show only ones that add meaning.
        if intent and intent.description and intent.description != intent_id.replace("_", " "):
            parts.append(("  " + for_terminal(intent.description), description_style))
        return Content.assemble(*parts)

    def _rebuild(self, *, mounting: bool = False) -> None:
        """Ask for the list to follow the filter, the recent intents and the value: once, on the
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
        shown = (query if filtered else "", tuple(self._recent), self.value, styles)
        if shown == self._shown:
            return
        if self._shown is not None and self._shown[3] != styles:
            self._plain_options.clear()  # the cached prompts hold the old resolved styles
        self._shown = shown
        numbers = {intent_id: n for n, intent_id in enumerate(self._recent, 1)}
        options: list[Option]
        if filtered:
            options = [
                Option(self._prompt(i, label, numbers.get(i), i == self.value, styles), id=i)
                for i, label in rank_intents(query, list(self._intents))
            ]
        else:
            # Recent first (in their number order), then the rest in taxonomy order.
            rest = [i for i in self._intents if i not in numbers]
            options = [
                self._plain_option(i, numbers.get(i), styles) for i in [*self._recent, *rest]
            ]
        self._list.set_options(options)
        if options:
            self._list.highlighted = 0

    def _plain_option(
        self, intent_id: str, number: int | None, styles: tuple[Style, Style]
    ) -> Option:
        key = (intent_id, number, intent_id == self.value)
        option = self._plain_options.get(key)
        if option is None:
            prompt = self._prompt(intent_id, Content(intent_id), number, key[2], styles)
            option = self._plain_options[key] = Option(prompt, id=intent_id)
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
            label.update(f"intent: {self.value}")
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

    def pick_highlighted(self) -> None:
        """Enter in the filter: pick the highlighted intent and clear the filter."""
        intent_id = self.highlighted
        if intent_id is None:
            self.app.bell()
            return
        self._input.value = ""
        self.pick(intent_id)

    def pick_recent(self, number: int) -> None:
        """A digit in the filter: pick recent intent `number` (1-based)."""
        if number > len(self._recent):
            self.app.bell()
            return
        self.pick(self._recent[number - 1])

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.pick(event.option.id)
