"""Numbers as an annotator writes them: in words ("7:30" → "seven thirty", "6am" → "six a m").

Recognisers write digits; the transcripts this project collects spell numbers out (see the demo
clips' manifest), so a digit left in a draft is an edit the annotator would have to make. Only
the shapes that read one way are spelled: whole numbers up to 999, clock times and a.m./p.m.
(and "%" is "percent", in `engine.make_draft`);
anything else (years, decimals, ordinals, phone numbers) is left as heard, since "2024" may be
"twenty twenty four" or "two thousand twenty four".
"""

from __future__ import annotations

import re

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(am|pm)?$")
_MERIDIEM = re.compile(r"^(\d{1,2})(am|pm)$")
_WHOLE = re.compile(r"^\d{1,3}$")


def _below_100(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    tens, ones = divmod(n, 10)
    return [_TENS[tens]] + ([_ONES[ones]] if ones else [])


def number_words(n: int) -> list[str]:
    """0 ≤ n ≤ 999 in words, without "and" ("one hundred five")."""
    if n < 100:
        return _below_100(n)
    hundreds, rest = divmod(n, 100)
    return [_ONES[hundreds], "hundred"] + (_below_100(rest) if rest else [])


def spell(word: str) -> list[str]:
    """`word` (already lower case) as the words an annotator would type."""
    if _WHOLE.match(word) and not (len(word) > 1 and word.startswith("0")):
        return number_words(int(word))
    if m := _CLOCK.match(word):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            return [word]
        spoken = _ONES[hour] if hour < 20 else " ".join(_below_100(hour))
        said = spoken.split()
        if minute:
            said += ["oh", _ONES[minute]] if minute < 10 else _below_100(minute)
        return said + ([m.group(3)[0], "m"] if m.group(3) else [])
    if m := _MERIDIEM.match(word):
        hour = int(m.group(1))
        return [*number_words(hour), m.group(2)[0], "m"] if 1 <= hour <= 12 else [word]
    return [word]
