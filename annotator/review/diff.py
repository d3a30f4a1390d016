"""Word-level differences between transcripts, for the review screen (no Textual)."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Literal

Op = Literal["same", "added", "removed"]


def word_diff(base: str, other: str) -> list[tuple[Op, str]]:
    """`other` against `base`, word by word: words both have, words only `other` has (added),
    and words only `base` has (removed), in reading order."""
    a, b = base.split(), other.split()
    out: list[tuple[Op, str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [("same", w) for w in b[j1:j2]]
            continue
        out += [("removed", w) for w in a[i1:i2]]
        out += [("added", w) for w in b[j1:j2]]
    return out
