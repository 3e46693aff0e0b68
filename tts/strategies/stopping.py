"""Stopping rules a generator consults after each round, from what a strategy may see (answers,
selector scores), never grades. `saturation` stops at the TTSPM saturation point N*(p̂, ε) with p̂
the leading answer's vote share or a selector's mean score; `adaptive_consistency` stops when the
posterior says the majority answer is settled."""

from __future__ import annotations

import math
import random
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


def beta_leader_probability(v1: int, v2: int) -> float:
    """P(p1 > p2) for the two leading answers under a uniform prior: P(X > 1/2) with
    X ~ Beta(v1 + 1, v2 + 1), which for integers is P(Binomial(v1 + v2 + 1, 1/2) ≤ v1)."""
    n = v1 + v2 + 1
    return sum(math.comb(n, k) for k in range(v1 + 1)) / 2 ** n


def dirichlet_leader_probability(counts: list[int], rng: random.Random, draws: int = 2000,
                                 alpha: float = 1.0) -> float:
    """P(the current leader has the largest share) under Dirichlet(counts + alpha), by Monte Carlo."""
    hits = 0
    for _ in range(draws):
        g = [rng.gammavariate(c + alpha, 1.0) for c in counts]
        hits += g[0] == max(g)
    return hits / draws


class AdaptiveConsistency(StoppingRule):
    """Adaptive self-consistency (Aggarwal et al. 2023): stop once the posterior probability that
    the current majority answer is the true mode reaches `confidence` — Beta over the top two
    answers (exact) or Dirichlet over all answers (Monte Carlo with the problem's rng)."""

    name = "adaptive_consistency"

    def __init__(self, confidence: float = 0.95, method: str = "beta", min_samples: int = 2,
                 draws: int = 2000) -> None:
        if not 0.5 < confidence < 1:
            raise ValueError("confidence must be in (0.5, 1)")
        if method not in ("beta", "dirichlet"):
            raise ValueError(f"method must be 'beta' or 'dirichlet', got '{method}'")
        self.confidence, self.method, self.min_samples, self.draws = confidence, method, min_samples, draws

    def leader_probability(self, candidates: list[Candidate], rng: random.Random) -> float:
        counts = sorted(Counter(c.answer for c in candidates if c.answer is not None).values(), reverse=True)
        if not counts:
            return 0.0
        if self.method == "beta":
            return beta_leader_probability(counts[0], counts[1] if len(counts) > 1 else 0)
        return dirichlet_leader_probability(counts + [0], rng, self.draws)  # + an unseen answer

    def should_stop(self, problem: Problem, candidates: list[Candidate], ctx: StrategyContext) -> bool:
        if len(candidates) < self.min_samples:
            return False
        return self.leader_probability(candidates, random.Random(len(candidates))) >= self.confidence
