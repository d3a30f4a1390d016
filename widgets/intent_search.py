"""Finding an intent by what it means, not only by its id.

`rank_intents(query, intents)` scores every intent with Textual's fuzzy matcher twice:
- against its id, with the blanks of the query dropped ("light off" finds `iot_hue_lightoff`,
  "alrmset" finds `alarm_set`);
- word by word against the words of its description and example phrasings: every word of the
  query must match one of them (fuzzily, from its first letter), so "remind" finds `calendar_set`
  ("remind me to call mum"), "tv" / "accident" / "other" find `not_device_directed` and "none" /
  "noise" find `no_speech`.

The better of the two scores ranks the intent. Ties (common: every exact word scores the same)
go first to the intents whose description holds more of the query's words, then to those whose
id matches more of them, then keep the taxonomy's order: "music" finds `play_music` ("play
music: a song, …") before `music_dislikeness` (whose examples say "this music is terrible"),
"time" finds `datetime_query` before `alarm_set` ("… for a time"). A hit found in the
meaning carries the phrase it was found in, with the matched word highlighted, so the list can
say why `calendar_set` is there.

Matching runs word against word (never the query against a whole description): the fuzzy
matcher tries every way the letters fit, which grows quickly with the candidate's length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from textual.content import Content
from textual.fuzzy import FuzzySearch
from textual.style import Style

from api.models import IntentDef

__all__ = ["MATCH_STYLE", "IntentHit", "highlight", "rank_intents"]

MATCH_STYLE = Style(bold=True, underline=True)
_WORD = re.compile(r"[a-z0-9']+")
#: One cache for every keystroke of the shift (query word, candidate word) -> score.
_SEARCH = FuzzySearch(cache_size=1 << 16)


@dataclass(frozen=True, slots=True)
class IntentHit:
    intent_id: str
    label: Content
    """The id, highlighted where the query matched it."""
    because: Content | None
    """The description or example the query's words were found in (matches highlighted), when
    the meaning matched better than the id; None otherwise."""


@dataclass(frozen=True, slots=True)
class _Meaning:
    phrases: tuple[str, ...]  # description first, then the examples
    words: dict[str, tuple[str, ...]]  # first letter -> words of the phrases


@lru_cache(maxsize=512)
def _meaning(description: str, examples: tuple[str, ...]) -> _Meaning:
    phrases = tuple(p for p in (description, *examples) if p)
    by_letter: dict[str, set[str]] = {}
    for phrase in phrases:
        for word in _WORD.findall(phrase.lower()):
            by_letter.setdefault(word[0], set()).add(word)
    return _Meaning(phrases, {k: tuple(sorted(v)) for k, v in by_letter.items()})


def highlight(text: str, query: str) -> Content:
    """`text` with the characters the fuzzy query matched styled (never read as markup)."""
    score, offsets = _SEARCH.match(query, text)
    content = Content(text)
    if score:
        for offset in offsets:
            if not text[offset].isspace():
                content = content.stylize(MATCH_STYLE, offset, offset + 1)
    return content


def _best_word(query_word: str, meaning: _Meaning) -> tuple[float, str]:
    best = (0.0, "")
    for word in meaning.words.get(query_word[0], ()):
        score = _SEARCH.match(query_word, word)[0]
        if score > best[0]:
            best = (score, word)
    return best


def _meaning_score(query_words: list[str], meaning: _Meaning) -> tuple[float, list[str]]:
    """Mean score of the query's words (0 unless every one matched), and the words they hit."""
    total = 0.0
    hits: list[str] = []
    for query_word in query_words:
        score, word = _best_word(query_word, meaning)
        if not score:
            return 0.0, []
        total += score
        hits.append(word)
    return total / len(query_words), hits


def _because(meaning: _Meaning, hits: list[str]) -> Content:
    """The phrase holding most of the matched words (the description wins ties)."""

    def held(phrase: str) -> int:
        words = set(_WORD.findall(phrase.lower()))
        return sum(hit in words for hit in hits)

    phrase = max(meaning.phrases, key=held)
    content = Content(phrase)
    lower = phrase.lower()
    for hit in set(hits):
        for m in re.finditer(rf"(?<![a-z0-9']){re.escape(hit)}(?![a-z0-9'])", lower):
            content = content.stylize(MATCH_STYLE, m.start(), m.end())
    return content


def rank_intents(query: str, intents: Sequence[IntentDef | str]) -> list[IntentHit]:
    """Intents matching `query`, best first (see the module docstring). An empty query keeps
    every intent in its given order."""
    compact = "".join(query.split()).lower()
    ids = [i if isinstance(i, str) else i.id for i in intents]
    if not compact:
        return [IntentHit(i, Content(i), None) for i in ids]
    query_words = _WORD.findall(query.lower())
    scored: list[tuple[float, int, float, int, IntentHit]] = []
    for index, intent in enumerate(intents):
        intent_id = ids[index]
        id_score = _SEARCH.match(compact, intent_id)[0]
        meaning_score = 0.0
        hits: list[str] = []
        meaning: _Meaning | None = None
        if query_words and not isinstance(intent, str):
            meaning = _meaning(intent.description, tuple(intent.examples))
            meaning_score, hits = _meaning_score(query_words, meaning)
        score = max(id_score, meaning_score)
        if score <= 0:
            continue
        if meaning is not None and meaning_score > id_score:
            hit = IntentHit(intent_id, Content(intent_id), _because(meaning, hits))
        else:
            hit = IntentHit(intent_id, highlight(intent_id, compact), None)
        in_description = _in_description(intent, hits) if meaning_score else 0
        in_id = sum(_SEARCH.match(word, intent_id)[0] for word in query_words)
        scored.append((score, in_description, in_id, index, hit))
    scored.sort(key=lambda s: (-s[0], -s[1], -s[2], s[3]))
    return [s[4] for s in scored]


def _in_description(intent: IntentDef | str, hits: list[str]) -> int:
    """How many of the matched words are in the intent's description (its main meaning)."""
    if isinstance(intent, str):
        return 0
    words = set(_WORD.findall(intent.description.lower()))
    return sum(hit in words for hit in hits)
