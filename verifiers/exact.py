"""`exact` grader: the canonical answer equals the reference (numbers compared as numbers)."""

from __future__ import annotations

from fractions import Fraction

from tts.types import Problem
from tts.verifiers.base import Grader
from tts.verifiers.extract import canonical_number


def _as_number(s: str) -> Fraction | None:
    try:
        return Fraction(canonical_number(s))
    except (ValueError, ZeroDivisionError):
        return None


class ExactGrader(Grader):
    """String equality after trimming, or numeric equality when both sides are numbers."""

    name = "exact"

    def __init__(self, case_sensitive: bool = False) -> None:
        self.case_sensitive = case_sensitive

    def _same(self, answer: str | None, ref: str | None) -> bool:
        if answer is None or ref is None:
            return False
        a, r = answer.strip(), ref.strip()
        if not self.case_sensitive:
            a, r = a.lower(), r.lower()
        if a == r:
            return True
        na, nr = _as_number(a), _as_number(r)
        return na is not None and na == nr

    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]:
        return [1.0 if self._same(a, problem.answer) else 0.0 for a in answers]
