"""Math answer extractors: `\\boxed{}` (last one wins), "The answer is ...", the final number, and
`math`, which tries them in a configurable order. Each returns the canonical form of `latex.canonical`."""

from __future__ import annotations

import re

from verifiers.base import Extractor
from verifiers.extract import LastNumber
from verifiers.latex import canonical, last_boxed

_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*:?\s*(.{1,200}?)(?:\.\s|\.?$|\n)",
                        re.IGNORECASE)
_NUMBER_THEN_WORDS = re.compile(r"^\\?\$?\s*(-?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z]")
WINDOW = 4000  # answers sit at the end; scanning only the tail keeps 100 kB inputs cheap


class Boxed(Extractor):
    """The content of the last `\\boxed{...}`, nested braces handled."""

    name = "boxed"

    def extract(self, text: str) -> str | None:
        return canonical(last_boxed(text[-WINDOW:]))


class AnswerIs(Extractor):
    """The phrase after the last "The answer is" / "Final answer:"."""

    name = "answer_is"

    def extract(self, text: str) -> str | None:
        matches = _ANSWER_IS.findall(text[-WINDOW:])
        if not matches:
            return None
        value = matches[-1].strip().strip("$").strip()
        boxed = last_boxed(value)
        if boxed is not None:
            return canonical(boxed)
        lead = _NUMBER_THEN_WORDS.match(value)  # "2 bolts of fiber" -> "2", "$18 per day" -> "18"
        return canonical(lead.group(1) if lead else value)


_METHODS = {"boxed": Boxed, "answer_is": AnswerIs, "last_number": LastNumber}


class MathAnswer(Extractor):
    """Try each method in `order` and return the first answer found (canonical form)."""

    name = "math"

    def __init__(self, order: list[str] | None = None) -> None:
        order = order or ["boxed", "answer_is", "last_number"]
        unknown = [m for m in order if m not in _METHODS]
        if unknown:
            raise ValueError(f"unknown extraction method '{unknown[0]}' (methods: {', '.join(_METHODS)})")
        self.order = order
        self._methods = [_METHODS[m]() for m in order]

    def extract(self, text: str) -> str | None:
        for method in self._methods:
            found = method.extract(text)
            if found is not None:
                return canonical(found)
        return None
