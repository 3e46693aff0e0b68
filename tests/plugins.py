"""Components referenced by dotted path from test recipes (a plug-in without packaging)."""

from __future__ import annotations

from tts.strategies.sample import SampleGenerator


class CrashOn(SampleGenerator):
    """Plain sampling, except that it raises on one chosen problem id."""

    def __init__(self, problem_id: str, role: str = "policy") -> None:
        super().__init__(role=role)
        self.problem_id = problem_id

    async def sample(self, problem, ctx, n):
        if problem.id == self.problem_id:
            raise RuntimeError(f"planted failure on {problem.id}")
        return await super().sample(problem, ctx, n)


class UnwritableOn(SampleGenerator):
    """Plain sampling, except that one problem's first candidate carries a value JSON cannot hold."""

    def __init__(self, problem_id: str, value: str = "object", role: str = "policy") -> None:
        super().__init__(role=role)
        self.problem_id, self.value = problem_id, value

    async def sample(self, problem, ctx, n):
        cands = await super().sample(problem, ctx, n)
        if problem.id == self.problem_id and cands:
            cands[0].meta["probe"] = object() if self.value == "object" else float("nan")
        return cands
