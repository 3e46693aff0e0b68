"""Model-free selectors: the vote share of a candidate's answer, and its own token confidence
(from the sampled log-probabilities), so best-of-N differs from voting without a reward model."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from tts.types import Candidate, Problem
from tts.verifiers.base import Selector


class VoteSelector(Selector):
    """Share of candidates (with an answer) that agree with this candidate's answer."""

    name = "vote"

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        counts = Counter(c.answer for c in candidates if c.answer is not None)
        total = sum(counts.values())
        return [counts[c.answer] / total if c.answer is not None and total else 0.0 for c in candidates]


class ConfidenceSelector(Selector):
    """exp(mean token log-probability) over the whole sample (`mode: mean`) or its last
    `tail_tokens` tokens (`mode: tail`): a geometric-mean token probability in (0, 1]."""

    name = "confidence"

    def __init__(self, mode: str = "mean", tail_tokens: int = 32) -> None:
        if mode not in ("mean", "tail"):
            raise ValueError(f"confidence mode must be 'mean' or 'tail', got '{mode}'")
        self.mode, self.tail_tokens = mode, tail_tokens

    def _one(self, c: Candidate) -> float:
        lps = c.logprobs or []
        if self.mode == "tail":
            lps = lps[-self.tail_tokens:]
        if not lps:
            return 0.0
        return math.exp(sum(max(x, -1e4) for x in lps) / len(lps))

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        return [self._one(c) for c in candidates]
