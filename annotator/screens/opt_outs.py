"""Opt-outs (issue 11's welfare): the categories a person is not served — clips an earlier
annotator flagged so, where clips get several annotations (K > 1). The same setting as
`annotator welfare --opt-out`, kept by the server (`PUT /v1/me/opt-outs`).

`open_opt_outs(screen)` reads the current state (`GET /v1/me/welfare`) on a worker thread,
shows `OptOutScreen` with it, and saves what was chosen. Keyboard only: up/down and space (or a
digit) toggle a category, Enter saves, Escape cancels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

from api.models import FlagDef
from api.text_safety import for_terminal
from api.welfare import EXPOSURE_CATEGORIES, WelfareState

if TYPE_CHECKING:
    from api.client import QueueClient


def categories(flags: list[FlagDef]) -> list[FlagDef]:
    """The taxonomy's flags, the exposure categories (distress, self-harm, explicit, minor)
    first: those are what people opt out of."""
    rank = {c: i for i, c in enumerate(EXPOSURE_CATEGORIES)}
    return sorted(flags, key=lambda f: rank.get(f.id, len(rank)))


class OptOutScreen(ModalScreen[list[str] | None]):
    """Dismisses with the chosen categories (possibly none), or None when cancelled."""

    DEFAULT_CSS = """
    OptOutScreen { align: center middle; }
    OptOutScreen > Vertical {
        width: 90%; max-width: 80; height: auto; max-height: 90%; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    OptOutScreen .title { text-style: bold; }
    OptOutScreen SelectionList { height: auto; max-height: 12; margin: 1 0; }
    OptOutScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
        *(
            Binding(str(i), f"toggle_category({i - 1})", show=False, priority=True)
            for i in range(1, 10)
        ),
    ]
    AUTO_FOCUS = "#opt-out-list"

    def __init__(self, flags: list[FlagDef], chosen: list[str]) -> None:
        super().__init__()
        self.flags = categories(flags)
        self.chosen = set(chosen)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Opt out of categories", classes="title")
            yield Label(
                "You will not be served clips an earlier annotator flagged in these categories"
                " (where each clip gets several annotations). Nothing else changes.",
                markup=False,
            )
            yield SelectionList[str](
                *(
                    Selection(
                        f"{i}  {for_terminal(f.id.replace('_', ' '))} — "
                        f"{for_terminal(f.definition)}",
                        f.id,
                        f.id in self.chosen,
                    )
                    for i, f in enumerate(self.flags, start=1)
                ),
                id="opt-out-list",
            )
            yield Label(
                "space or a digit: opt out / back in · Enter: save · Esc: cancel",
                classes="hint",
                markup=False,
            )

    @property
    def selection(self) -> SelectionList[str]:
        return self.query_one("#opt-out-list", SelectionList)

    def action_toggle_category(self, index: int) -> None:
        if 0 <= index < len(self.flags):
            self.selection.toggle(self.flags[index].id)

    def action_save(self) -> None:
        self.dismiss(sorted(self.selection.selected))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _opted(state: WelfareState) -> str:
    chosen = ", ".join(for_terminal(c.replace("_", " ")) for c in state.opt_outs)
    return f"Opted out of: {chosen}." if chosen else "Opted out of nothing: every clip is served."


class OptOuts:
    """The flow for one screen: read, ask, save; every error is a toast, never a crash."""

    def __init__(
        self,
        screen: Screen[None],
        client_factory: Callable[[], QueueClient] | None,
        flags: list[FlagDef],
    ) -> None:
        self.screen = screen
        self.factory = client_factory
        self.flags = flags

    def open(self) -> None:
        if self.factory is None:
            self.screen.notify(
                "Opt-outs are kept by the server: connect first.", severity="warning"
            )
            return
        self._in_thread(self._read)

    def _fail(self, what: str, error: Exception) -> None:
        from api.client import RequestRejected

        why = error.error.message if isinstance(error, RequestRejected) else str(error)
        self.screen.app.call_from_thread(
            self.screen.notify, f"{what}: {for_terminal(why)}", severity="warning"
        )

    def _in_thread(self, job: Callable[[], None]) -> None:
        self.screen.run_worker(
            job, thread=True, group="opt-outs", exclusive=True, exit_on_error=False
        )

    def _read(self) -> None:
        from api.client import ApiError

        assert self.factory is not None
        try:
            with self.factory() as client:
                state = client.welfare()
        except ApiError as e:
            self._fail("Could not read your opt-outs", e)
            return
        self.screen.app.call_from_thread(self._ask, state.opt_outs)

    def _ask(self, current: list[str]) -> None:
        def chosen(categories: list[str] | None) -> None:
            if categories is not None and set(categories) != set(current):
                self._in_thread(lambda: self._save(categories))

        self.screen.app.push_screen(OptOutScreen(self.flags, current), chosen)

    def _save(self, chosen: list[str]) -> None:
        from api.client import ApiError

        assert self.factory is not None
        try:
            with self.factory() as client:
                state = client.set_opt_outs(chosen)
        except ApiError as e:
            self._fail("Opt-outs not saved", e)
            return
        self.screen.app.call_from_thread(self.screen.notify, _opted(state), title="Opt-outs")
