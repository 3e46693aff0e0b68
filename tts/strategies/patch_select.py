"""Aggregators over execution signals (spec: swe-selection.md), usable on patches or programs:

- `hybrid`: R2E-Gym's hybrid — the top max(3, ⌊n/2⌋) by (ef, regression, testgen), then maximal
  regression, testgen, ef; the remaining ties at random (offline: the tie set's expected value).
- `test_vote`: CodeMonkeys' voting — most votes (tests that pass), submitted as the shortest such
  patch; offline the value over every max-vote candidate. With `role:` set, the shortlist goes
  through the model-driven selection loop (tests run in the sandbox), falling back to the top one.

Signals are selector scores named by `ef`, `regression`, `testgen`, `votes` (a missing selector
leaves that signal empty, i.e. tied)."""

from __future__ import annotations

import random
from tts.context import StrategyContext
from tts.strategies.aggregators import PureAggregator
from tts.types import Answer, Candidate, Problem
from tts.verifiers.swe_select import Scored, keep_max, select_hybrid, shortlist


def _signals(c: Candidate, names: dict[str, str | None]) -> Scored:
    get = lambda key: c.scores.get(names[key]) if names[key] else None  # noqa: E731
    return Scored(str(c.index), c.answer or "", get("ef"), get("regression"), get("testgen"), get("votes"))


class Hybrid(PureAggregator):
    name = "hybrid"

    def __init__(self, ef: str | None = "ef", regression: str | None = "regression", testgen: str | None = "testgen",
                 frac: float = 0.5, min_k: int = 3) -> None:
        self.names = {"ef": ef, "regression": regression, "testgen": testgen, "votes": None}
        self.frac, self.min_k = frac, min_k

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        return {a: 1.0 for a in self.winners(candidates)}

    def winners(self, candidates: list[Candidate]) -> list[str]:
        usable = [c for c in candidates if c.answer]
        scored = [_signals(c, self.names) for c in usable]
        tie = select_hybrid(scored, self.frac, self.min_k)
        return sorted({s.patch for s in tie})


class TestVote(PureAggregator):
    name = "test_vote"

    def __init__(self, votes: str = "testgen", role: str | None = None, max_candidates: int = 3,
                 max_attempts: int = 8, max_tokens: int = 1024) -> None:
        self.votes, self.role, self.max_candidates = votes, role, max_candidates
        self.max_attempts, self.max_tokens = max_attempts, max_tokens

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in candidates:
            if c.answer:
                out[c.answer] = max(out.get(c.answer, float("-inf")), c.scores.get(self.votes, 0.0))
        return out

    def ranked(self, candidates: list[Candidate]) -> list[Candidate]:
        usable = [c for c in candidates if c.answer]
        order = shortlist([c.answer for c in usable], [c.scores.get(self.votes, 0.0) for c in usable],
                          self.max_candidates)
        return [usable[i] for i in order]

    def choose(self, candidates: list[Candidate], rng: random.Random) -> Answer:
        top = self.ranked(candidates)
        if not top:
            return Answer(None, info={"reason": "no candidate had a patch"})
        tied = keep_max([_signals(c, {"ef": None, "regression": None, "testgen": None, "votes": self.votes})
                         for c in top], "votes")
        return Answer(top[0].answer, top[0].text, top[0].index, {"shortlist": [c.index for c in top],
                                                                  "max_vote_ties": len(tied)})

    async def select(self, problem: Problem, candidates: list[Candidate], ctx: StrategyContext) -> Answer:
        answer = self.choose(candidates, ctx.rng)
        if self.role is None or answer.answer is None:
            return answer
        from tts.verifiers.swe_loop import run_selection_loop

        return await run_selection_loop(self, problem, self.ranked(candidates), ctx, answer)

