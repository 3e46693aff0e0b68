"""Aggregators that need no model: majority vote, selector-weighted vote and best-by-selector.
Each is a pure function of the candidates' canonical answers and scores, so evals can replay
it on subsets of stored candidates (maj@k, weighted@k, best@k) with exact tie handling."""

from __future__ import annotations

import random
from collections import defaultdict

from tts.context import StrategyContext
from tts.strategies.base import Aggregator
from tts.types import Answer, Candidate, Problem


class PureAggregator(Aggregator):
    """An aggregator defined by a score per answer; the winner is the argmax, ties broken at random."""

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        """Aggregate score of each canonical answer (candidates without an answer do not vote)."""
        raise NotImplementedError

    def winners(self, candidates: list[Candidate]) -> list[str]:
        """Every answer tied for the top score (evals score ties as the expected value)."""
        tally = self.tally(candidates)
        if not tally:
            return []
        top = max(tally.values())
        return sorted(a for a, s in tally.items() if s == top)

    def choose(self, candidates: list[Candidate], rng: random.Random) -> Answer:
        tied = self.winners(candidates)
        if not tied:
            return Answer(None, info={"reason": "no candidate had an answer"})
        pick = rng.choice(tied)
        first = next(c for c in candidates if c.answer == pick)
        return Answer(pick, first.text, first.index,
                      info={"tally": self.tally(candidates), "tied": len(tied)})

    async def select(self, problem: Problem, candidates: list[Candidate], ctx: StrategyContext) -> Answer:
        return self.choose(candidates, ctx.rng)


class Majority(PureAggregator):
    """Self-consistency: the most frequent canonical answer."""

    name = "majority"

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        counts: dict[str, float] = defaultdict(float)
        for c in candidates:
            if c.answer is not None:
                counts[c.answer] += 1.0
        return dict(counts)


class _SelectorAggregator(PureAggregator):
    def __init__(self, selector: str = "confidence") -> None:
        self.selector = selector

    def _score(self, c: Candidate) -> float:
        if self.selector not in c.scores:
            raise KeyError(f"aggregator '{self.name}' needs selector '{self.selector}' in the recipe's "
                           f"selectors (candidate has: {', '.join(c.scores) or 'none'})")
        return c.scores[self.selector]


class Weighted(_SelectorAggregator):
    """Weighted best-of-N: selector scores summed per answer."""

    name = "weighted"

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        for c in candidates:
            if c.answer is not None:
                sums[c.answer] += self._score(c)
        return dict(sums)


class Best(_SelectorAggregator):
    """Best-of-N: the answer of the single highest-scoring candidate."""

    name = "best"

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        best: dict[str, float] = {}
        for c in candidates:
            if c.answer is not None:
                best[c.answer] = max(best.get(c.answer, float("-inf")), self._score(c))
        return best
