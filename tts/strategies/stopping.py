"""Stopping rules a generator consults after each round. `saturation` stops at the TTSPM
saturation point N*(p̂, ε) with p̂ estimated from what the strategy may see — the leading answer's
vote share, or the mean of a selector's [0, 1] scores — never from grades."""

from __future__ import annotations

from collections import Counter

from tts.budget.ttspm import saturation_point
from tts.context import StrategyContext
from tts.strategies.base import StoppingRule
from tts.types import Candidate, Problem


class SaturationStop(StoppingRule):
    """Stop once the number of samples reaches N* for the current estimate of p.

    With `source: vote`, p̂ = share of samples giving the most common answer (a sample "hits" when
    it agrees with the consensus); with a selector name, p̂ = the mean of its scores, which must be
    probabilities. Reconstruction: TTSPM's p is per-problem correctness; these are its observable
    stand-ins. A problem whose p̂ is so small that even the first gain is below ε also stops."""

    name = "saturation"

    def __init__(self, eps: float = 0.05, min_samples: int = 2, f_max: float = 1.0,
                 source: str = "vote") -> None:
        if eps <= 0:
            raise ValueError("eps must be positive")
        if min_samples < 1:
            raise ValueError("min_samples must be >= 1")
        self.eps, self.min_samples, self.f_max, self.source = eps, min_samples, f_max, source
        self.needs_scores = source != "vote"  # the generator then scores each round as it lands

    def estimate_p(self, candidates: list[Candidate]) -> float:
        if self.source == "vote":
            answers = Counter(c.answer for c in candidates if c.answer is not None)
            return max(answers.values()) / len(candidates) if answers else 0.0
        scores = [c.scores[self.source] for c in candidates if self.source in c.scores]
        if not scores:
            raise ValueError(f"saturation stop: no candidate has a '{self.source}' score (list the "
                             f"selector under 'selectors:' or use source: vote)")
        return min(1.0, max(0.0, sum(scores) / len(scores)))

    def should_stop(self, problem: Problem, candidates: list[Candidate], ctx: StrategyContext) -> bool:
        if len(candidates) < self.min_samples:
            return False
        p = self.estimate_p(candidates)
        n_star = saturation_point(p, self.eps, self.f_max)
        ctx.log.debug("problem %s: p̂=%.3f N*=%s after %d samples", problem.id, p, n_star, len(candidates))
        return len(candidates) >= n_star
