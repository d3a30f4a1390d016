"""The review screen: a clip whose annotations disagree, its annotations side by side (each
transcript's words against the first one's: added underlined green, missing struck red), the
clip's audio on `p`, and the reviewer's decision: `1`–`9` takes that annotation as the final,
`e` edits a final starting from the selected one, `n` leaves the clip for later.

Network calls and playback run in thread workers; the screen never waits on them. Everything
drawn is text the server already checked (SafeText), escaped again with `for_terminal`.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Static

from annotator.audio.decode import decode
from annotator.audio.player import Player
from annotator.review.diff import word_diff
from api.client import ApiError
from api.quality_models import FinalIn, ReviewItem
from api.review_client import ReviewClient
from api.text_safety import for_terminal

MAX_CARDS = 9
_STYLE = {"same": "", "added": "underline green", "removed": "strike red"}


def transcript_text(base: str, other: str) -> Text:
    text = Text()
    for op, word in word_diff(base, other):
        if text:
            text.append(" ")
        text.append(for_terminal(word), style=_STYLE[op])
    return text


class ReviewApp(App[None]):
    TITLE = "annotator review"
    #: Nothing focused until `e` opens the editor: the decision keys go to the app.
    AUTO_FOCUS = None
    CSS = """
    #cards { height: auto; }
    .card { width: 1fr; border: round $primary; padding: 0 1; height: auto; }
    .card.selected { border: double $accent; }
    #editor { height: auto; display: none; }
    #editor.open { display: block; }
    #status { height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *[Binding(str(i), f"pick({i})", f"take {i}", show=i <= 2) for i in range(1, 10)],
        Binding("left", "select(-1)", "←", show=False),
        Binding("right", "select(1)", "→", show=False),
        Binding("e", "edit", "edit final"),
        Binding("p", "play", "play"),
        Binding("n", "next", "later"),
        Binding("r", "reload", "reload"),
        Binding("escape", "cancel", "cancel", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, client: ReviewClient, player: Player) -> None:
        super().__init__()
        self.client = client
        self.player = player
        self.items: list[ReviewItem] = []
        self.selected = 0
        self.decided = 0

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="header")
        with Horizontal(id="cards"):
            for i in range(1, MAX_CARDS + 1):
                yield Static("", classes="card", id=f"card-{i}")
        with Vertical(id="editor"):
            yield Input(id="transcript", placeholder="final transcript")
            yield Input(id="intent", placeholder="intent id")
            yield Input(id="flags", placeholder="flags, comma-separated")
            yield Input(id="note", placeholder="note (needed with an escalation flag)")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    # ---------------------------------------------------------------- drawing

    @property
    def current(self) -> ReviewItem | None:
        return self.items[0] if self.items else None

    def status(self, message: str) -> None:
        self.query_one("#status", Static).update(Text(for_terminal(message)))

    def show(self) -> None:
        item = self.current
        header = self.query_one("#header", Static)
        shown = item.annotations[:MAX_CARDS] if item is not None else []
        for i in range(1, MAX_CARDS + 1):
            self.query_one(f"#card-{i}", Static).display = i <= len(shown)
        if item is None:
            header.update(f"nothing to review ({self.decided} decided) — r reloads, q quits")
            return
        header.update(
            Text(
                for_terminal(
                    f"clip {item.clip_id} · {item.locale} · {item.duration_s:.1f} s · "
                    f"{len(self.items)} waiting · disagree on: {', '.join(item.reasons)}"
                )
            )
        )
        self.selected = min(self.selected, len(shown) - 1)
        base = shown[0].transcript
        for i, a in enumerate(shown, start=1):
            body = Text(for_terminal(f"{i} · {a.annotator}"), style="bold")
            body.append("\n" + for_terminal(f"intent {a.intent}"))
            body.append("\n" + for_terminal(f"flags {', '.join(a.flags) or '–'}") + "\n")
            body.append_text(transcript_text(base, a.transcript))
            if a.note:
                body.append("\n" + for_terminal(f"note: {a.note}"), style="italic")
            card = self.query_one(f"#card-{i}", Static)
            card.update(body)
            card.set_class(i - 1 == self.selected, "selected")

    # ---------------------------------------------------------------- actions

    @work(thread=True, exclusive=True, group="net")
    def action_reload(self) -> None:
        try:
            items = self.client.reviews().items
        except ApiError as e:
            self.call_from_thread(self.status, f"cannot load the review queue: {e}")
            return
        self.call_from_thread(self._loaded, items)

    def _loaded(self, items: list[ReviewItem]) -> None:
        self.items = items
        self.selected = 0
        self.show()
        self.status(f"{len(items)} clip(s) to review")

    def action_select(self, step: int) -> None:
        if self.current is not None:
            self.selected = (self.selected + step) % min(len(self.current.annotations), MAX_CARDS)
            self.show()

    def action_pick(self, number: int) -> None:
        item = self.current
        if item is None or self.editor_open or number > len(item.annotations):
            return
        a = item.annotations[number - 1]
        # The note goes with it: a final carrying an escalation flag is refused without one.
        final = FinalIn(transcript=a.transcript, intent=a.intent, flags=a.flags, note=a.note)
        self.decide(item, final)

    @property
    def editor_open(self) -> bool:
        return self.query_one("#editor").has_class("open")

    def action_edit(self) -> None:
        item = self.current
        if item is None:
            return
        a = item.annotations[self.selected]
        self.query_one("#transcript", Input).value = a.transcript
        self.query_one("#intent", Input).value = a.intent
        self.query_one("#flags", Input).value = ", ".join(a.flags)
        self.query_one("#note", Input).value = a.note or ""
        self.query_one("#editor").add_class("open")
        self.query_one("#transcript", Input).focus()
        self.status("edit the final; enter in the last field saves it, escape cancels")

    def action_cancel(self) -> None:
        self.query_one("#editor").remove_class("open")
        self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "note":
            self.screen.focus_next()
            return
        item = self.current
        if item is None:
            return
        flags = [f.strip() for f in self.query_one("#flags", Input).value.split(",") if f.strip()]
        try:
            final = FinalIn(
                transcript=self.query_one("#transcript", Input).value,
                intent=self.query_one("#intent", Input).value.strip(),
                flags=flags,
                note=self.query_one("#note", Input).value.strip() or None,
            )
        except ValueError as e:
            self.status(f"not saved: {e.errors()[0]['msg'] if hasattr(e, 'errors') else e}")
            return
        self.decide(item, final)

    @work(thread=True, exclusive=True, group="net")
    def decide(self, item: ReviewItem, final: FinalIn) -> None:
        try:
            self.client.decide(item.clip_id, final)
        except ApiError as e:
            self.call_from_thread(self.status, f"not saved: {e}")
            return
        self.call_from_thread(self._decided, item)

    def _decided(self, item: ReviewItem) -> None:
        self.player.stop()
        self.items = [i for i in self.items if i.clip_id != item.clip_id]
        self.decided += 1
        self.action_cancel()
        self.selected = 0
        self.show()
        self.status(f"saved the final for {item.clip_id}")

    def action_next(self) -> None:
        if len(self.items) > 1:
            self.player.stop()
            self.items = [*self.items[1:], self.items[0]]
            self.selected = 0
            self.show()

    @work(thread=True, exclusive=True, group="audio")
    def action_play(self) -> None:
        item = self.current
        if item is None:
            return
        if self.player.playing:
            self.player.pause()
            return
        try:
            self.player.load(decode(self.client.audio(item.clip_id)))
        except (ApiError, ValueError) as e:
            self.call_from_thread(self.status, f"cannot play: {e}")
            return
        self.player.play()
        self.call_from_thread(self.status, f"playing {item.clip_id}")
