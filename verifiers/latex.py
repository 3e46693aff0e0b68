"""Locating and normalising answers in LaTeX text: the last `\\boxed{}` (nested braces), and a
canonical form for grouping votes (numbers reduced to one spelling, cosmetic LaTeX removed)."""

from __future__ import annotations

import re
from fractions import Fraction

MAX_ANSWER_CHARS = 1000  # longer "answers" are not answers; never hand them to a parser


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` or `\\fbox{...}`, braces balanced; None if absent/unclosed."""
    for marker in ("\\boxed", "\\fbox"):
        start = text.rfind(marker)
        if start < 0:
            continue
        i = start + len(marker)
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or text[i] != "{":
            # `\boxed 5` form: the next token
            m = re.match(r"\s*([^\s$]+)", text[i:])
            return m.group(1) if m else None
        depth = 0
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1: j]
        return None
    return None


_COSMETIC = [
    (r"\\!\s*", ""),  # "12,\! 000": a negative thin space inside a number joins it
    (r"\\left|\\right|\\,|\\;|\\:|\\quad|\\qquad|\\displaystyle", ""),
    (r"\\[dt]frac", r"\\frac"),
    (r"\^\{\\circ\}|\^\\circ|°", ""),
    (r"\\%|%", ""),
    (r"\\\$|\$", ""),
    (r"\\text\{\s*\}", ""),
]
_UNITS = (r"\\(?:text|mbox|mathrm)\{\s*(?:cm|m|km|units?|degrees?|inches|inch|feet|ft|dollars?|cents?|"
          r"hours?|minutes?|seconds?|sq|square)[^}]*\}(?:\^\{?\d\}?)?")


def _rational(s: str) -> Fraction | None:
    if re.search(r",\s|\d\s+\d", s):  # "32, 349" is a list, "4 4/9" a mixed number: neither is 32349 or 44/9
        return None
    s = s.replace(" ", "")
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s) or re.fullmatch(r"(-?)\\frac(\d)(\d)", s)
    try:
        if m:
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return -value if m.group(1) else value
        if re.fullmatch(r"-?[1-9]\d{0,2}(,\d{3})+(\.\d+)?|-?\d+(\.\d+)?|-?\.\d+|-?\d+/\d+", s):
            return Fraction(s.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _strip_assignment(s: str) -> str:
    """"x = 5" -> "5", "k = \\frac{1}{2}" -> "\\frac{1}{2}"; an equation ("y = 2x + 1") stays whole."""
    m = re.match(r"^[a-zA-Z]\s*=\s*([^=]+)$", s)
    if m and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", m.group(1))):
        return m.group(1)
    return s


def canonical(answer: str | None) -> str | None:
    """One spelling per answer for vote grouping: `\\frac12`, `0.5` and `1/2` all become `0.5`."""
    if answer is None:
        return None
    s = answer.strip()
    if not s or len(s) > MAX_ANSWER_CHARS:
        return None
    s = re.sub(_UNITS, "", s)
    for pattern, repl in _COSMETIC:
        s = re.sub(pattern, repl, s)
    s = re.sub(r"^\\text\{(.*)\}$", r"\1", s.strip())
    s = _strip_assignment(s)
    s = re.sub(r"(?<![.,])[.,;]$", "", s.strip()).strip()  # a sentence's full stop, not the "..." of a series
    value = _rational(s)
    if value is not None:
        return number_text(value)
    return re.sub(r"\s+", " ", s)


def number_text(value: Fraction) -> str:
    """`3`, `0.5`, `-2.25` for terminating decimals, else `1/3`."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:
        digits = 0
        while (value * 10**digits).denominator != 1:
            digits += 1
        return f"{float(value):.{digits}f}"
    return f"{value.numerator}/{value.denominator}"
