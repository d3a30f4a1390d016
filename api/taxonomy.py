"""The taxonomy (intents, flags, transcript tags) and the one rule both sides lint transcripts with.

The server rejects what `check_annotation` reports; the client underlines what `lint_transcript`
reports while the annotator types, so an annotation that passes locally is never refused for form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from api.models import Taxonomy
from api.text_safety import UNSAFE, check_text, describe

DEFAULT_TAXONOMY_RESOURCE = "taxonomy_default.json"


def load_default_taxonomy() -> Taxonomy:
    text = resources.files("api").joinpath(DEFAULT_TAXONOMY_RESOURCE).read_text("utf-8")
    return Taxonomy.model_validate_json(text)


def load_taxonomy(path: Path | None) -> Taxonomy:
    """A deployment's own taxonomy file (same JSON shape), or the shipped default."""
    if path is None:
        return load_default_taxonomy()
    return Taxonomy.model_validate(json.loads(path.read_text("utf-8")))


@dataclass(frozen=True, slots=True)
class LintIssue:
    """A problem in a transcript, with the character span to underline."""

    start: int
    end: int
    code: str
    message: str


# A tag is a bracketed lower-case word; anything else in brackets is a rule break.
_BRACKETED = re.compile(r"\[[^\[\]]*\]")
_TAG_SHAPE = re.compile(r"^\[[a-z_]+\]$")
_DOUBLE_SPACE = re.compile(r" {2,}")


class TaxonomyIndex:
    """Fast look-ups over a taxonomy, built once per taxonomy version."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy

    @cached_property
    def intent_ids(self) -> frozenset[str]:
        return frozenset(i.id for i in self.taxonomy.intents)

    @cached_property
    def flag_ids(self) -> frozenset[str]:
        return frozenset(f.id for f in self.taxonomy.flags)

    @cached_property
    def escalation_flags(self) -> frozenset[str]:
        return frozenset(f.id for f in self.taxonomy.flags if f.escalation)

    @cached_property
    def tags(self) -> frozenset[str]:
        return frozenset(t.tag for t in self.taxonomy.tags)

    def lint_transcript(self, text: str) -> list[LintIssue]:
        """Rule: tags are the taxonomy's, brackets balance, no control characters, no double spaces,
        no leading or trailing blanks."""
        issues: list[LintIssue] = []
        for m in _BRACKETED.finditer(text):
            tag = m.group(0)
            if tag not in self.tags:
                hint = (
                    "tags are lower-case words in brackets"
                    if not _TAG_SHAPE.match(tag)
                    else "known tags: " + " ".join(sorted(self.tags))
                )
                issues.append(
                    LintIssue(m.start(), m.end(), "unknown_tag", f"unknown tag {tag}: {hint}")
                )
        stripped = _BRACKETED.sub(lambda m: " " * len(m.group(0)), text)
        for i, ch in enumerate(stripped):
            if ch in "[]":
                issues.append(
                    LintIssue(
                        i, i + 1, "unbalanced_bracket", f"unmatched '{ch}': tags look like [noise]"
                    )
                )
        for m in UNSAFE.finditer(text):
            issues.append(
                LintIssue(
                    m.start(),
                    m.end(),
                    "control_char",
                    f"{describe(m.group())} in transcript: remove it (it can hide or reorder text)",
                )
            )
        for m in _DOUBLE_SPACE.finditer(text):
            issues.append(LintIssue(m.start(), m.end(), "double_space", "more than one space"))
        if text and text != text.strip():
            lead = len(text) - len(text.lstrip())
            if lead:
                issues.append(LintIssue(0, lead, "edge_space", "transcript starts with blanks"))
            trail = len(text) - len(text.rstrip())
            if trail:
                issues.append(
                    LintIssue(
                        len(text) - trail, len(text), "edge_space", "transcript ends with blanks"
                    )
                )
        issues.sort(key=lambda i: (i.start, i.end))
        return issues

    def implied_intent(self, flags: Iterable[str]) -> tuple[str, str] | None:
        """(intent, flag) when a flag means the clip needs no intent of its own: a flag that lets
        the transcript be empty (unintelligible) implies the first intent that does (no_speech).
        The client picks it, shown, so the server's rule (an intent is always required) holds."""
        t = self.taxonomy
        intents = [i for i in t.empty_transcript_intents if i in self.intent_ids]
        flag = next((f for f in t.empty_transcript_flags if f in set(flags)), None)
        if flag is None or not intents:
            return None
        return intents[0], flag

    def transcript_may_be_empty(self, intent: str | None, flags: list[str] | set[str]) -> bool:
        t = self.taxonomy
        return (intent in t.empty_transcript_intents) or any(
            f in t.empty_transcript_flags for f in flags
        )

    def check_annotation(
        self, *, transcript: str, intent: str | None, flags: list[str], note: str | None
    ) -> list[tuple[str, str, str]]:
        """Everything that makes an annotation unacceptable, as (field, reason, message) triples.

        Shared by the server (422 on the first) and the client's submit validation (all inline).
        """
        problems: list[tuple[str, str, str]] = []
        if not intent:
            problems.append(("intent", "intent_required", "pick an intent"))
        elif intent not in self.intent_ids:
            problems.append(("intent", "unknown_intent", f"unknown intent {intent!r}"))
        unknown = [f for f in flags if f not in self.flag_ids]
        if unknown:
            problems.append(("flags", "unknown_flag", f"unknown flag(s): {', '.join(unknown)}"))
        if len(set(flags)) != len(flags):
            problems.append(("flags", "duplicate_flag", "a flag is listed twice"))
        if not transcript.strip() and not self.transcript_may_be_empty(intent, flags):
            problems.append(
                (
                    "transcript",
                    "transcript_required",
                    "type what was said (or pick no_speech / flag unintelligible)",
                )
            )
        for issue in self.lint_transcript(transcript):
            problems.append(("transcript", issue.code, issue.message))
        if note and (problem := check_text(note)):
            problems.append(("note", "unsafe_character", problem))
        escalated = sorted(set(flags) & self.escalation_flags)
        if escalated and not (note and note.strip()):
            problems.append(
                ("note", "note_required", f"{', '.join(escalated)} needs a note for the supervisor")
            )
        return problems
