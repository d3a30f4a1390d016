"""A machine draft in the transcript: which words the recogniser was unsure of, as the text changes.

`unsure_spans(words, text, threshold)` maps the draft's low-confidence words onto the text as it
is now: the draft's words are aligned with the current words (difflib), and only words still as
the machine wrote them keep their mark, so a word the annotator retyped stops being underlined
and the marks follow the words when text is inserted before them.

`DraftNote` is the one-line notice above the editor saying the text is a machine draft (and what
the screen says about it: heard or not, the key that clears it). Hidden when there is no draft.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

from textual.widgets import Static

__all__ = ["DraftNote", "draft_text", "unsure_spans"]

_WORD = re.compile(r"\S+")


def draft_text(words: Sequence[tuple[str, float]]) -> str:
    """The transcript a draft's words make (the server's `asr_hint`)."""
    return " ".join(word for word, _ in words)


def unsure_spans(
    words: Sequence[tuple[str, float]], text: str, threshold: float
) -> list[tuple[int, int]]:
    """Character spans in `text` of the draft's words below `threshold`, still unedited."""
    if not words:
        return []
    found = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    matcher = SequenceMatcher(None, [w for w, _ in words], [w for w, _, _ in found], autojunk=False)
    spans: list[tuple[int, int]] = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            if words[block.a + k][1] < threshold:
                _, start, end = found[block.b + k]
                spans.append((start, end))
    return spans


class DraftNote(Static):
    """ "machine draft — …": shown only while the transcript holds a machine draft."""

    DEFAULT_CSS = """
    DraftNote {
        height: auto;
        max-height: 2;
        padding: 0 1;
        display: none;
        background: $warning 15%;
        color: $text-warning;
        &.-shown { display: block; }
        &.-heard { background: $success 15%; color: $text-success; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", markup=False, id=id, classes=classes)

    def show_note(self, text: str | None, *, heard: bool = False) -> None:
        """Say `text` (None hides the line); `heard` draws it as done."""
        self.set_class(text is not None, "-shown")
        self.set_class(heard, "-heard")
        if text is not None and str(self.content) != text:
            self.update(text)

    @property
    def text(self) -> str | None:
        return str(self.content) if self.has_class("-shown") else None
