"""`math` grader: math-verify equivalence of the answer and the reference, in killable worker
processes (math-verify's own timeout uses signal.alarm, which fails off the main thread and would
block the event loop on it). Results are cached per (answer, reference)."""

from __future__ import annotations

import logging

from tts.types import Problem
from verifiers.base import Grader
from verifiers.latex import MAX_ANSWER_CHARS, canonical
from verifiers.pool import KillablePool

log = logging.getLogger(__name__)


def _wrap(s: str) -> str:
    return s if "\\boxed" in s or s.startswith("$") else f"$\\boxed{{{s}}}$"


def verify_pair(answer: str, reference: str) -> bool:
    """Runs in a worker: math-verify's parse + verify (gold first, as its API expects)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold = parse(_wrap(reference), extraction_config=configs, parsing_timeout=1)
    pred = parse(_wrap(answer), extraction_config=configs, parsing_timeout=1)
    return bool(gold and pred and verify(gold, pred, timeout_seconds=1))


class MathGrader(Grader):
    """Equivalence by math-verify; equal canonical forms short-cut to correct without a worker."""

    name = "math"

    def __init__(self, workers: int = 2, timeout: float = 1.5, shortcut: bool = True) -> None:
        self.shortcut = shortcut
        self.pool = KillablePool("verifiers.math_grader:verify_pair", workers=workers, timeout=timeout)
        self.cache: dict[tuple[str, str], bool] = {}

    async def _one(self, answer: str | None, reference: str | None) -> float:
        if answer is None or reference is None or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        if self.shortcut and canonical(answer) == canonical(reference):
            return 1.0
        key = (answer, reference)
        if key not in self.cache:
            # The reference as written, then in canonical form (units and cosmetic LaTeX removed).
            refs = dict.fromkeys([reference, canonical(reference) or reference])
            self.cache[key] = False
            for ref in refs:
                status, value = await self.pool.run(answer, ref)
                if status != "ok":
                    log.debug("math grader %s on %r vs %r: %s", status, answer[:80], ref[:80], value)
                if status == "ok" and value:
                    self.cache[key] = True
                    break
        return 1.0 if self.cache[key] else 0.0

    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]:
        seen: dict[str | None, float] = {}
        out = []
        for a in answers:  # candidates repeat answers: grade each distinct one once
            if a not in seen:
                seen[a] = await self._one(a, problem.answer)
            out.append(seen[a])
        return out

    async def close(self) -> None:
        self.pool.close()
