"""Simple extractors: the last number in the text, or a configurable regular expression."""

from __future__ import annotations

import re

from tts.verifiers.base import Extractor

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def canonical_number(text: str) -> str:
    """Canonical form of a plain number: no thousands commas, no trailing zeros, no '+'."""
    s = text.strip().replace(",", "").lstrip("+")
    if re.fullmatch(r"-?\d+\.\d*", s):
        s = s.rstrip("0").rstrip(".")
    if re.fullmatch(r"-?0+\d+", s):
        s = ("-" if s.startswith("-") else "") + s.lstrip("-").lstrip("0")
    return "0" if s in ("-0", "") else s


class LastNumber(Extractor):
    """The last number in the text (GSM8K style); looks only at the final `window` characters."""

    name = "last_number"

    def __init__(self, window: int = 2000) -> None:
        self.window = window

    def extract(self, text: str) -> str | None:
        found = _NUMBER.findall(text[-self.window:])
        return canonical_number(found[-1]) if found else None


class Regex(Extractor):
    """The first capture group of the last match of `pattern`; numbers are canonicalised."""

    name = "regex"

    def __init__(self, pattern: str, flags: str = "", numeric: bool = False) -> None:
        bits = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
        try:
            self.pattern = re.compile(pattern, sum(bits[f] for f in flags))
        except (re.error, KeyError) as exc:
            raise ValueError(f"bad regex extractor pattern {pattern!r} or flags {flags!r}: {exc}") from None
        self.numeric = numeric

    def extract(self, text: str) -> str | None:
        matches = list(self.pattern.finditer(text))
        if not matches:
            return None
        m = matches[-1]
        value = (m.group(1) if m.groups() else m.group(0)).strip()
        return canonical_number(value) if self.numeric else value
