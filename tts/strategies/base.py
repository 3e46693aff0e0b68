"""Contracts for strategies. A generator `sample`s candidates, an aggregator `select`s an answer,
a search `solve`s a problem with its own loop, and a stopping rule decides after each round
whether to draw more. Any aggregator works over any generator: composing them is a recipe."""

from __future__ import annotations

import abc
from typing import Any

from tts.budget import BudgetExhausted
from tts.context import StrategyContext
from tts.types import Answer, Candidate, Outcome, Problem


class StoppingRule(abc.ABC):
    """Decides, from what a strategy may see (never grades), whether to stop drawing samples."""

    name: str = "stopping_rule"
    needs_scores: bool = False  # True: generators run the recipe's selectors before asking

    @abc.abstractmethod
    def should_stop(self, problem: Problem, candidates: list[Candidate], ctx: StrategyContext) -> bool: ...


class Generator(abc.ABC):
    """Makes up to `n` candidates for a problem."""

    name: str = "generator"
    iid: bool = True  # whether candidates are i.i.d. draws (what sweeps over N require)

    @abc.abstractmethod
    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]: ...


class Aggregator(abc.ABC):
    """Chooses one answer from candidates."""

    name: str = "aggregator"

    @abc.abstractmethod
    async def select(self, problem: Problem, candidates: list[Candidate], ctx: StrategyContext) -> Answer: ...


class Search(abc.ABC):
    """A strategy whose generation and selection interleave (beam search, self-refinement)."""

    name: str = "search"

    @abc.abstractmethod
    async def solve(self, problem: Problem, ctx: StrategyContext) -> Outcome: ...


class GenerateThenSelect(Search):
    """Generator + selectors + aggregator as one strategy; a run out of budget aggregates what exists."""

    def __init__(self, generator: Generator, aggregator: Aggregator, n: int) -> None:
        self.generator, self.aggregator, self.n = generator, aggregator, n
        self.name = f"{getattr(generator, 'name', 'generator')}+{getattr(aggregator, 'name', 'aggregator')}"

    async def solve(self, problem: Problem, ctx: StrategyContext) -> Outcome:
        info: dict[str, Any] = {}
        try:
            candidates = await self.generator.sample(problem, ctx, self.n)
        except BudgetExhausted as exc:  # aggregate what was already paid for
            candidates, info["budget_exhausted"] = list(ctx.paid), str(exc)
        await ctx.score_candidates(candidates)
        answer = await self.aggregator.select(problem, candidates, ctx)
        return Outcome(answer=answer, candidates=candidates, info=info)
