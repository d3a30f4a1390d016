"""The transcript editor: a soft-wrapping TextArea that underlines lint issues as you type.

Two public widgets:

`TranscriptEditor(TextArea)` — the editor itself.
    Constructor: `TranscriptEditor(text="", *, lint=None, placeholder=..., name, id, classes)`;
        `lint` is `Callable[[str], list[LintIssue]]` (pass `TaxonomyIndex.lint_transcript`).
    Properties: `lint` (settable; re-underlines at once), `issues -> list[LintIssue]` (for the
        current text), plus everything TextArea has (`text`, `cursor_location`, `undo()`, …).
    Methods: `load(text, cursor=None)` (replace the text, clear undo history, cursor to `cursor`
        or the end), `clear_text()` (undoable), `insert_tag(tag)` (at the cursor, replacing a
        selection, with spaces added so "hello[noise]" becomes "hello [noise]").
    Messages: `TranscriptEditor.Edited(editor, text, cursor, issues)` after every text change,
        `load()` included (TextArea.Changed is still posted too); the App debounces draft saves.

`TranscriptField(Vertical)` — the editor plus a line under it that explains the lint issues
(the one under the cursor first, else the first). This is what the App should mount.
    Constructor: `TranscriptField(text="", *, lint=None, placeholder=..., name, id, classes)`.
    Properties: `editor -> TranscriptEditor`, `text -> str`, `lint` (settable).
    Methods: `load`, `clear_text`, `insert_tag` (delegate to the editor); `focus()` focuses
        the editor.
    Messages: the editor's `TranscriptEditor.Edited` bubbles through it.

Underlining uses TextArea's documented `get_line` hook: each issue's character span (offsets into
the whole text) is mapped to (row, column) spans once per text version and stylized with the
`transcript-editor--lint` component class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Location

from api.models import LOW_CONFIDENCE
from api.taxonomy import LintIssue
from widgets.inline_bindings import InlineBindings
from widgets.machine_draft import DraftNote, unsure_spans

__all__ = ["LintFunction", "TranscriptEditor", "TranscriptField", "issue_spans_by_row"]

LintFunction = Callable[[str], list[LintIssue]]

DEFAULT_PLACEHOLDER = "type what was said…"
# Where a tag needs no space between it and the following character.
_NO_SPACE_BEFORE = set(",.;:!?")


def issue_spans_by_row(
    lines: list[str], newline_length: int, issues: list[LintIssue]
) -> dict[int, list[tuple[int, int]]]:
    """Map character spans over the whole text to per-row (start_column, end_column) spans.

    An issue that crosses a line break is split; zero-width issues get one cell so they are seen.
    """
    starts: list[int] = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + newline_length
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for issue in issues:
        end = max(issue.end, issue.start + 1)
        for row, row_start in enumerate(starts):
            row_end = row_start + len(lines[row])
            # +1 so an issue on a line break (or past the end) still marks the cursor cell.
            if issue.start <= row_end and end > row_start:
                start_col = max(0, issue.start - row_start)
                end_col = min(len(lines[row]) + 1, end - row_start)
                if end_col > start_col:
                    spans[row].append((start_col, end_col))
    return dict(spans)


@dataclass(frozen=True, slots=True)
class _LintResult:
    text: str
    issues: list[LintIssue]
    spans: dict[int, list[tuple[int, int]]]


class TranscriptEditor(TextArea, InlineBindings):
    """A TextArea for one utterance: soft wrap, tag insertion, and lint underlines.

    Its editing keys run in typing order (`InlineBindings`)."""

    DEFAULT_CSS = """
    TranscriptEditor {
        height: 1fr;
        min-height: 3;
        & .transcript-editor--lint {
            color: $text-error;
            text-style: underline;
        }
        & .transcript-editor--unsure {
            color: $text-warning;
            text-style: underline;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = TextArea.COMPONENT_CLASSES | {
        "transcript-editor--lint",
        "transcript-editor--unsure",
    }

    @dataclass
    class Edited(Message):
        """The transcript text changed (typing, undo, a tag, clear, or `load()`)."""

        editor: TranscriptEditor
        text: str
        """The whole transcript."""
        cursor: Location
        """(row, column) of the cursor after the change."""
        issues: list[LintIssue]
        """Lint issues for `text` (empty when no lint function is set)."""

        @property
        def control(self) -> TranscriptEditor:
            return self.editor

    def __init__(
        self,
        text: str = "",
        *,
        lint: LintFunction | None = None,
        placeholder: str = DEFAULT_PLACEHOLDER,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            text,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
            placeholder=placeholder,
            name=name,
            id=id,
            classes=classes,
        )
        self._lint = lint
        self._lint_result: _LintResult | None = None
        #: The machine draft's (word, confidence) pairs, while one is loaded.
        self._draft_words: tuple[tuple[str, float], ...] = ()
        self._unsure: tuple[str, dict[int, list[tuple[int, int]]]] | None = None

    # ------------------------------------------------------------------ lint

    @property
    def lint(self) -> LintFunction | None:
        """The lint function (None: no underlines)."""
        return self._lint

    @lint.setter
    def lint(self, lint: LintFunction | None) -> None:
        self._lint = lint
        self._lint_result = None
        # TextArea caches rendered lines by text/cursor state only; a new rule must drop them.
        self.notify_style_update()
        self.refresh()

    def _current_lint(self) -> _LintResult:
        # Lint lazily per text version: rendering (get_line) and messages then always agree with
        # the text on screen, without a timer racing the line cache TextArea keeps.
        text = self.text
        result = self._lint_result
        if result is None or result.text != text:
            issues = self._lint(text) if self._lint is not None else []
            spans = issue_spans_by_row(
                list(self.document.lines), len(self.document.newline), issues
            )
            result = self._lint_result = _LintResult(text, issues, spans)
        return result

    @property
    def issues(self) -> list[LintIssue]:
        """Lint issues in the current text, sorted by position."""
        return list(self._current_lint().issues)

    # ------------------------------------------------------------------ machine draft

    def set_draft_words(self, words: Sequence[tuple[str, float]]) -> None:
        """The machine draft's words and confidences (empty: no draft). Words below
        `LOW_CONFIDENCE` are underlined for as long as they stay as the machine wrote them."""
        self._draft_words = tuple(words)
        self._unsure = None
        self.notify_style_update()  # TextArea's line cache does not know about these marks
        self.refresh()

    @property
    def draft_words(self) -> tuple[tuple[str, float], ...]:
        return self._draft_words

    def _unsure_rows(self) -> dict[int, list[tuple[int, int]]]:
        text = self.text
        if self._unsure is None or self._unsure[0] != text:
            spans = unsure_spans(self._draft_words, text, LOW_CONFIDENCE)
            issues = [LintIssue(a, b, "unsure", "") for a, b in spans]
            rows = issue_spans_by_row(list(self.document.lines), len(self.document.newline), issues)
            self._unsure = (text, rows)
        return self._unsure[1]

    @property
    def unsure_words(self) -> list[str]:
        """The words underlined as unsure right now, in text order."""
        text = self.text
        return [text[a:b] for a, b in unsure_spans(self._draft_words, text, LOW_CONFIDENCE)]

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        if self._draft_words:
            unsure = self._unsure_rows().get(line_index)
            if unsure:
                style = self.get_component_rich_style("transcript-editor--unsure", partial=True)
                for start, end in unsure:
                    line.stylize(style, start, end)
        spans = self._current_lint().spans.get(line_index)
        if spans:
            style = self.get_component_rich_style("transcript-editor--lint", partial=True)
            for start, end in spans:
                line.stylize(style, start, end)
        return line

    # ------------------------------------------------------------------ editing

    def load(self, text: str, cursor: Location | None = None) -> None:
        """Replace the transcript (a draft or an ASR hint); undo history starts afresh.

        Args:
            text: The new transcript.
            cursor: Where to put the cursor; default the end, ready to keep typing.
        """
        self.load_text(text)
        self.cursor_location = cursor if cursor is not None else self.document.end

    def clear_text(self) -> None:
        """Empty the transcript as an edit, so ctrl+z brings it back."""
        if self.text:
            self.clear()

    def insert_tag(self, tag: str) -> None:
        """Insert a transcript tag at the cursor (replacing any selection).

        A space is added before the tag unless it starts a line or follows a blank, and after it
        unless it ends a line or precedes a blank or punctuation.

        Args:
            tag: "[noise]" or "noise".
        """
        if not (tag.startswith("[") and tag.endswith("]")):
            tag = f"[{tag.strip('[]')}]"
        start, end = sorted(self.selection)
        before = self.document.get_line(start[0])[: start[1]]
        after = self.document.get_line(end[0])[end[1] :]
        prefix = " " if before and not before[-1].isspace() else ""
        suffix = (
            " " if after and not after[0].isspace() and after[0] not in _NO_SPACE_BEFORE else ""
        )
        self.replace(prefix + tag + suffix, start, end)

    def _on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is self:
            lint = self._current_lint()
            self.post_message(self.Edited(self, lint.text, self.cursor_location, list(lint.issues)))


def explain(issues: list[LintIssue], cursor_offset: int | None) -> str:
    """One line for the lint bar: the issue under the cursor (else the first) and a count."""
    if not issues:
        return ""
    current = issues[0]
    if cursor_offset is not None:
        for issue in issues:
            if issue.start <= cursor_offset <= max(issue.end, issue.start + 1):
                current = issue
                break
    more = len(issues) - 1
    count = f" (+{more} more)" if more else ""
    return f"✗ {current.message}{count}"


class TranscriptField(Vertical):
    """A `TranscriptEditor` with a line under it explaining its lint issues."""

    DEFAULT_CSS = """
    TranscriptField {
        height: 1fr;
        min-height: 4;
        & > TranscriptEditor {
            height: 1fr;
        }
        & > .transcript-field--lint {
            height: auto;
            min-height: 1;
            max-height: 2;
            padding: 0 1;
            color: $text-error;
        }
    }
    """

    def __init__(
        self,
        text: str = "",
        *,
        lint: LintFunction | None = None,
        placeholder: str = DEFAULT_PLACEHOLDER,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._editor = TranscriptEditor(text, lint=lint, placeholder=placeholder)
        self._lint_line = Static("", classes="transcript-field--lint", markup=False)
        self._draft_note = DraftNote(classes="transcript-field--draft")

    def compose(self) -> ComposeResult:
        yield self._draft_note
        yield self._editor
        yield self._lint_line

    @property
    def editor(self) -> TranscriptEditor:
        return self._editor

    @property
    def text(self) -> str:
        return self._editor.text

    @property
    def draft_note(self) -> DraftNote:
        """The "machine draft" line above the editor (hidden unless the screen shows it)."""
        return self._draft_note

    @property
    def lint(self) -> LintFunction | None:
        return self._editor.lint

    @lint.setter
    def lint(self, lint: LintFunction | None) -> None:
        self._editor.lint = lint
        self._update_lint_line()

    @property
    def lint_message(self) -> str:
        """What the lint line currently says ("" when the transcript is clean)."""
        return str(self._lint_line.content)

    def load(self, text: str, cursor: Location | None = None) -> None:
        self._editor.load(text, cursor)

    def clear_text(self) -> None:
        self._editor.clear_text()

    def insert_tag(self, tag: str) -> None:
        self._editor.insert_tag(tag)

    def focus(self, scroll_visible: bool = True) -> Self:
        self._editor.focus(scroll_visible)
        return self

    def _cursor_offset(self) -> int:
        row, column = self._editor.cursor_location
        lines = self._editor.document.lines
        newline = len(self._editor.document.newline)
        return sum(len(line) + newline for line in lines[:row]) + column

    def _update_lint_line(self) -> None:
        self._lint_line.update(explain(self._editor.issues, self._cursor_offset()))

    @on(TranscriptEditor.Edited)
    @on(TextArea.SelectionChanged)
    def _refresh_lint_line(self) -> None:
        self._update_lint_line()
