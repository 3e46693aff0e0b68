"""English number words to integers ("three" -> 3, "twenty-one" -> 21, "one hundred" -> 100), for
answers a model spells out; used by extraction (vote grouping) and by the math grader."""

from __future__ import annotations

import re

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_WORD = re.compile(r"[a-z]+")


def leading_number_words(text: str) -> tuple[int, int] | None:
    """(value, characters used) of the number words that open `text`, or None if it opens otherwise."""
    total, current, used, seen = 0, 0, 0, False
    pos = 0
    lowered = text.lower()
    while True:
        m = _WORD.match(lowered, pos)
        if not m:
            break
        word = m.group(0)
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred" and seen:
            current *= 100
        elif word in _SCALES and seen:
            total, current = total + current * _SCALES[word], 0
        elif word == "and" and seen:
            pass
        else:
            break
        seen = word != "and" or seen
        if word != "and":
            used = m.end()
        sep = re.match(r"[\s-]+", lowered[m.end():])
        pos = m.end() + (sep.end() if sep else 0)
    if not seen or used == 0:
        return None
    return total + current, used


def words_to_number(text: str) -> int | None:
    """The value of `text` when it is number words alone (ignoring a trailing '.'), else None."""
    s = text.strip().rstrip(".").strip()
    found = leading_number_words(s)
    return found[0] if found and found[1] == len(s) else None
