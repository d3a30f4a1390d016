"""The people view (admins): everyone with their tokens — person id, role, token id, created,
expires, state — and a key to revoke one token or all of a person's, asked first
(`ConfirmRevoke`). Keyboard only; the keys are in the help and the command palette.

What the server lists never holds a token or its hash (`GET /v1/admin/people`); a token is
named by its `token_id`. A revoke (`POST /v1/admin/people/{person_id}/revoke`) is refused by
every server process within a second. A supervisor's token gets 403: the view says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Label, Static

from annotator.actions import SUPERVISE
from annotator.keymap import app_bindings
from annotator.screens.help import HelpScreen
from api.models import PersonInfo, TokenInfo
from api.text_safety import for_terminal

if TYPE_CHECKING:
    from annotator.supervise.services import ConsoleServices

#: The console's actions that mean something here.
_HERE = frozenset(
    {
        "console.people",
        "people.revoke",
        "console.refresh",
        "app.help",
        "app.command-palette",
        "app.quit",
    }
)
TABLE_KEYS = (
    ("People", "up, down, pageup, pagedown", "Select a token"),
    ("People", "p, escape", "Back to the escalations"),
)
COLUMNS = ("person", "person id", "role", "token id", "created", "expires", "state", "annotations")

Scope = Literal["one", "all"]


@dataclass(frozen=True, slots=True)
class TokenRow:
    person: PersonInfo
    token: TokenInfo


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M")


def token_rows(people: list[PersonInfo]) -> list[TokenRow]:
    return [TokenRow(p, t) for p in people for t in p.tokens]


class ConfirmRevoke(ModalScreen[Scope | None]):
    """y / Enter: this token; a: all the person's live tokens; n / Escape: nothing."""

    DEFAULT_CSS = """
    ConfirmRevoke { align: center middle; }
    ConfirmRevoke > Vertical {
        width: 72; height: auto; padding: 1 2; border: thick $error; background: $surface;
    }
    ConfirmRevoke .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "choose('one')", "Revoke this token", priority=True),
        Binding("a", "choose('all')", "Revoke all their tokens", priority=True),
        Binding("n,escape", "choose('none')", "Cancel", priority=True),
    ]

    def __init__(self, row: TokenRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        p, t = self.row.person, self.row.token
        with Vertical():
            yield Label(f"Revoke a token of {for_terminal(p.name)}?", markup=False)
            yield Label(
                f"token {t.token_id or '?'} · {t.role.value} · created {_when(t.created_at)}",
                markup=False,
            )
            yield Label(
                f"{for_terminal(p.name)} has {p.live_tokens} live token"
                f"{'s' if p.live_tokens != 1 else ''}. A revoked token stops working on every"
                " server at once; it cannot be undone (create a new one instead).",
                markup=False,
            )
            yield Label(
                "y / Enter: revoke this token · a: revoke all their tokens · n / Esc: cancel",
                classes="hint",
                markup=False,
            )

    def action_choose(self, choice: str) -> None:
        self.dismiss("one" if choice == "one" else "all" if choice == "all" else None)


class PeopleScreen(Screen[None]):
    DEFAULT_CSS = """
    PeopleScreen #people-status { height: 1; padding: 0 1; background: $boost; }
    PeopleScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, services: ConsoleServices) -> None:
        super().__init__()
        self.services = services
        # Revoke is this view's own key: in its footer (the escalations' footer leaves it out).
        mine = [
            replace(b, show=True, description="Revoke") if b.id == "people.revoke" else b
            for b in app_bindings(services.keymap.bindings, SUPERVISE)
            if b.id in _HERE
        ]
        self._bindings = BindingsMap.merge(
            [self._bindings, BindingsMap([*mine, Binding("escape", "people", show=False)])]
        )
        self.rows: dict[str, TokenRow] = {}

    def compose(self) -> ComposeResult:
        yield Static("people · loading…", id="people-status", markup=False)
        table: DataTable[str] = DataTable(cursor_type="row", id="people-table")
        yield table
        yield Footer()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#people-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*COLUMNS)
        self.load()

    @work(thread=True, group="people", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        from api.client import Forbidden

        with self.services.client_factory() as client:
            try:
                people = client.people().people
            except Forbidden as e:
                message = for_terminal(e.error.message)
                self.app.call_from_thread(
                    self._status, f"people · people and tokens need an admin's token ({message})"
                )
                return
        self.app.call_from_thread(self._show, people)

    def _status(self, text: str) -> None:
        self.query_one("#people-status", Static).update(text)

    def _show(self, people: list[PersonInfo]) -> None:
        table = self.table
        keep = self.selected
        table.clear()
        self.rows = {}
        for row in token_rows(people):
            p, t = row.person, row.token
            key = t.token_id or f"{p.name}/{len(self.rows)}"
            self.rows[key] = row
            table.add_row(
                for_terminal(p.name),
                p.person_id or "-",
                t.role.value,
                t.token_id or "-",
                _when(t.created_at),
                _when(t.expires_at),
                f"revoked {_when(t.revoked_at)}" if t.revoked_at else t.state,
                str(p.annotations),
                key=key,
            )
        if keep in self.rows:
            table.move_cursor(row=table.get_row_index(keep))
        live = sum(p.live_tokens for p in people)
        self._status(
            f"people · {len(people)} people · {live} live tokens · x revokes the selected one"
        )

    @property
    def selected(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def action_revoke(self) -> None:
        key = self.selected
        row = self.rows.get(key) if key is not None else None
        if row is None:
            self.notify("No token selected.", severity="warning")
            return
        if row.person.person_id is None or row.token.token_id is None:
            self.notify("This server cannot revoke from the console.", severity="warning")
            return

        def chosen(scope: Scope | None) -> None:
            if scope is not None:
                self.revoke(row, scope)

        self.app.push_screen(ConfirmRevoke(row), chosen)

    @work(thread=True, group="revoke", exit_on_error=False)
    def revoke(self, row: TokenRow, scope: Scope) -> None:
        from api.client import ApiError, RequestRejected

        person_id = row.person.person_id or ""
        only = row.token.token_id if scope == "one" else None
        name = for_terminal(row.person.name)
        with self.services.client_factory() as client:
            try:
                done = client.revoke(person_id, only)
            except ApiError as e:
                why = e.error.message if isinstance(e, RequestRejected) else str(e)
                self.app.call_from_thread(
                    self.notify, f"Not revoked: {for_terminal(why)}", severity="warning"
                )
                return
        n = done.revoked
        said = (
            f"Revoked {n} token{'s' if n != 1 else ''} of {name}."
            if n
            else f"Nothing to revoke: {name}'s token was revoked already."
        )
        self.app.call_from_thread(self.notify, said)
        self.load()

    def action_people(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_show_help(self) -> None:
        self.app.push_screen(HelpScreen(self.services.keymap, SUPERVISE, TABLE_KEYS))

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_quit(self) -> None:
        self.app.exit(0)
