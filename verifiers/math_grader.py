"""`math` grader: the labelling rules of docs/measurement.md ("What counts as correct") in killable
worker processes (`tts.verifiers.math_equiv.equivalent`: exact numbers, option letters, percent rules,
math-verify, equations up to scaling). math-verify's own timeout uses signal.alarm, which fails off
the main thread and would block the event loop on it; the pool's deadline bounds every case."""

from __future__ import annotations

import logging
import re
from typing import Any

from tts.types import Problem
from tts.verifiers.base import Grader
from tts.verifiers.latex import MAX_ANSWER_CHARS, canonical
from tts.verifiers.math_judge import JUDGE_TEMPLATE, judge_same, needs_judge
from tts.verifiers.pool import KillablePool

log = logging.getLogger(__name__)

_PERCENT_QUESTION = re.compile(r"\bwhat percent|\bpercentage\b|\bas a percent|\bin percent|\bper ?cent of\b",
                               re.IGNORECASE)


def percent_question(problem: Problem) -> bool:
    """The question asks for a percentage (then `0.7` answers `70`)."""
    return bool(_PERCENT_QUESTION.search(problem.problem or ""))


class MathGrader(Grader):
    """Equivalence by `tts.verifiers.math_equiv`; equal canonical forms short-cut to correct without a worker.
    Results are cached per (answer, reference, percent question). `judge: ROLE` adds the model-judge
    fallback for text answers (`tts.verifiers.math_judge`), costed in the ledger as `grader:ROLE`."""

    name = "math"

    def __init__(self, workers: int = 2, timeout: float = 1.5, shortcut: bool = True, judge: str | None = None,
                 judge_template: str = JUDGE_TEMPLATE, judge_max_tokens: int = 8) -> None:
        for field in ("{reference}", "{answer}"):
            if field not in judge_template:
                raise ValueError(f"judge_template is missing {field}")
        self.shortcut, self.judge, self.judge_template, self.judge_max_tokens = shortcut, judge, judge_template, \
            judge_max_tokens
        self.roles = (judge,) if judge else ()
        self.judged: dict[tuple[str, str], bool] = {}
        self.pool = KillablePool("tts.verifiers.math_equiv:equivalent", workers=workers, timeout=timeout)
        self.cache: dict[tuple[str, str, bool], bool] = {}

    async def same(self, answer: str | None, reference: str | None, percent: bool = False) -> bool:
        """One comparison (cached); None, over-long or timed-out answers are not equal."""
        if answer is None or reference is None or len(answer) > MAX_ANSWER_CHARS:
            return False
        if self.shortcut and canonical(answer) == canonical(reference):
            return True
        key = (answer, reference, percent)
        if key not in self.cache:
            status, value = await self.pool.run(answer, reference, percent)
            if status != "ok":
                log.debug("math grader %s on %r vs %r: %s", status, answer[:80], reference[:80], value)
            self.cache[key] = status == "ok" and bool(value)
        return self.cache[key]

    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]:
        percent = percent_question(problem)
        seen: dict[str | None, float] = {}
        out = []
        for a in answers:  # candidates repeat answers: grade each distinct one once
            if a not in seen:
                seen[a] = 1.0 if await self.same(a, problem.answer, percent) else 0.0
            out.append(seen[a])
        return out

    async def grade_with(self, problem: Problem, answers: list[str | None], ctx: Any) -> list[float]:
        """The rules first; then, with `judge: ROLE`, the judge decides text answers they call wrong."""
        grades = await self.grade(problem, answers)
        if not self.judge:
            return grades
        role = ctx.role(self.judge)
        for i, (answer, grade) in enumerate(zip(answers, grades)):
            if grade == 0.0 and needs_judge(answer, problem.answer):
                key = (answer or "", problem.answer or "")
                if key not in self.judged:
                    self.judged[key] = await judge_same(role, problem.problem, key[0], key[1], self.judge_template,
                                                        self.judge_max_tokens)
                grades[i] = 1.0 if self.judged[key] else 0.0
        return grades

    async def close(self) -> None:
        self.pool.close()
