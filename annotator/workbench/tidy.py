"""Fixes a transcript can take without changing what was said: blanks at either end and runs of
spaces (the lint rule's `edge_space` and `double_space`). Everything else the rule refuses needs
the annotator's judgement and stays an error."""

from __future__ import annotations

import re

_RUN_OF_SPACES = re.compile(r" {2,}")


def tidy_transcript(text: str) -> tuple[str, list[str]]:
    """(the tidied text, what was fixed in words); the text unchanged and [] when nothing was."""
    fixes: list[str] = []
    if text != text.lstrip():
        fixes.append("blanks at the start")
    if text != text.rstrip():
        fixes.append("blanks at the end")
    tidied = text.strip()
    joined = _RUN_OF_SPACES.sub(" ", tidied)
    if joined != tidied:
        fixes.append("double spaces")
    return joined, fixes
