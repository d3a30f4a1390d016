"""TranscriptEditor/TranscriptField: lint underlines and explanations, tags, messages."""

from __future__ import annotations

from textual.widgets import TextArea

from api.taxonomy import LintIssue
from tests.widgets.snapshot_apps.hosts import TranscriptApp
from widgets import TranscriptEditor, TranscriptField
from widgets.transcript import issue_spans_by_row

SIZE = (80, 24)


def underlined(editor: TranscriptEditor, row: int = 0) -> str:
    """The characters drawn underlined on screen row `row` of the editor."""
    strip = editor.render_line(row)
    return "".join(s.text for s in strip if s.style is not None and s.style.underline)


def test_character_spans_map_to_rows_and_split_across_line_breaks() -> None:
    lines = ["ab [x", "y] cd"]
    issues = [LintIssue(3, 8, "unknown_tag", "…"), LintIssue(0, 0, "edge", "…")]
    assert issue_spans_by_row(lines, 1, issues) == {0: [(3, 6), (0, 1)], 1: [(0, 2)]}
    # Windows newlines are two characters long.
    assert issue_spans_by_row(lines, 2, [LintIssue(7, 9, "c", "…")]) == {1: [(0, 2)]}


async def test_typing_an_unknown_tag_and_a_stray_bracket_underlines_and_explains() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one(TranscriptField)
        await pilot.press(*"hello [nois] there")
        await pilot.pause()
        assert field.text == "hello [nois] there"
        assert underlined(field.editor) == "[nois]"
        assert field.lint_message.startswith("✗ unknown tag [nois]")

        await pilot.press(*" ok]")
        await pilot.pause()
        assert underlined(field.editor) == "[nois]]"
        # The cursor sits on the stray bracket, so that is the one explained.
        assert "unmatched ']'" in field.lint_message
        assert field.lint_message.endswith("(+1 more)")

        await pilot.press("home")
        await pilot.pause()
        assert field.lint_message.startswith("✗ unknown tag [nois]")

        # Fixing the text removes the underline at once (no stale cached lines).
        field.load("hello [noise] there")
        await pilot.pause()
        assert underlined(field.editor) == ""
        assert field.lint_message == ""


async def test_every_change_posts_edited_with_text_cursor_and_issues() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"hi  x")
        await pilot.pause()
        edits = app.of_type(TranscriptEditor.Edited)
        assert [e.text for e in edits] == ["h", "hi", "hi ", "hi  ", "hi  x"]
        assert edits[-1].cursor == (0, 5)
        assert [i.code for i in edits[-1].issues] == ["double_space"]


async def test_insert_tag_adds_the_spaces_it_needs() -> None:
    app = TranscriptApp("hello")
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one(TranscriptField)
        field.insert_tag("[noise]")
        assert field.text == "hello [noise]"

        field.load("hello world", cursor=(0, 5))
        field.insert_tag("[cough]")
        assert field.text == "hello [cough] world"

        field.load("hello world", cursor=(0, 6))
        field.insert_tag("laughter")
        assert field.text == "hello [laughter] world"

        field.load("yes.", cursor=(0, 3))
        field.insert_tag("[noise]")
        assert field.text == "yes [noise]."
        assert field.editor.cursor_location == (0, len("yes [noise]"))

        field.load("", cursor=None)
        field.insert_tag("[music]")
        await pilot.pause()
        assert field.text == "[music]"
        assert field.editor.issues == []


async def test_clear_text_is_undoable_and_load_puts_cursor_at_end() -> None:
    app = TranscriptApp("set an alarm")
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one(TranscriptField)
        assert field.editor.cursor_location == (0, len("set an alarm"))
        field.clear_text()
        assert field.text == ""
        field.editor.undo()
        await pilot.pause()
        assert field.text == "set an alarm"


async def test_lint_can_be_set_after_mount() -> None:
    app = TranscriptApp("a [b")
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one(TranscriptField)
        lint = field.lint
        field.lint = None
        await pilot.pause()
        assert underlined(field.editor) == "" and field.lint_message == ""
        field.lint = lint
        await pilot.pause()
        assert underlined(field.editor) == "["
        assert "unmatched '['" in field.lint_message
        assert isinstance(field.editor, TextArea)
