"""`sample`: plain i.i.d. sampling from one role, in rounds, with an optional stopping rule.
Rounds keep seeds aligned with one big call (round k draws indices k·r … k·r+r−1), so N=4 then
N=8 reproduces the first 4 samples."""

from __future__ import annotations

import logging

from tts.budget import BudgetExhausted
from tts.context import StrategyContext
from tts.strategies.base import Generator, StoppingRule
from tts.types import Candidate, Problem

log = logging.getLogger(__name__)


class SampleGenerator(Generator):
    """Draw `n` samples of the recipe prompt from `role`; `round_size` samples per backend call."""

    name = "sample"
    iid = True
    nested = {"stopping": "stopping_rules"}  # built by tts.components.build from the recipe field

    def __init__(self, role: str = "policy", round_size: int | None = None,
                 stopping: str | dict | StoppingRule | None = None) -> None:
        if round_size is not None and round_size < 1:
            raise ValueError("round_size must be >= 1")
        if isinstance(stopping, (str, dict)):
            raise TypeError("stopping must be a built stopping rule (tts.components.build builds it from a recipe)")
        self.role, self.round_size, self.stopping = role, round_size, stopping

    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        role = ctx.role(self.role)
        prompt = role.prompt()
        base_seed = ctx.seed(f"{self.role}:sample")
        size = self.round_size or n
        out: list[Candidate] = []
        while len(out) < n:
            want = min(size, n - len(out))
            try:  # as many of this round as the budget covers, sized and reserved at once
                gen = await role.generate(prompt, role.sampling(n=want, seed=base_seed + len(out)), fit_budget=True)
            except BudgetExhausted:
                if not out:
                    raise
                log.debug("problem %s: budget stops sampling at %d of %d", problem.id, len(out), n)
                break
            out += ctx.candidates(gen, self.role, start=len(out), iid=True)
            if self.stopping is None:
                continue
            if getattr(self.stopping, "needs_scores", False):
                await ctx.score_candidates(out)
            if self.stopping.should_stop(problem, out, ctx):
                break
        return out
