"""Self-refinement: draft → critique → revise, up to `rounds` times per chain, stopping early when
a selector is satisfied (score ≥ `threshold`) or the critique says the solution is fine. The critic
may be the same role or another; `chains` independent chains run in parallel and vote."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tts.context import StrategyContext
from tts.strategies.base import Search
from tts.types import Answer, Candidate, Outcome, Problem

CRITIQUE = ("Problem:\n{problem}\n\nProposed solution:\n{solution}\n\nCheck the solution step by step. "
            "If it is correct, say \"No errors.\" Otherwise explain the first mistake.")
REVISE = ("Problem:\n{problem}\n\nPrevious solution:\n{solution}\n\nFeedback:\n{feedback}\n\n"
          "Write a corrected, complete solution.")


class SelfRefine(Search):
    name = "self_refine"

    def __init__(self, role: str = "policy", critic: str | None = None, rounds: int = 2, chains: int = 1,
                 selector: str | None = None, threshold: float = 0.5, critique_template: str = CRITIQUE,
                 revise_template: str = REVISE, done_phrase: str = "no errors", feedback_tokens: int = 256) -> None:
        if rounds < 0 or chains < 1:
            raise ValueError("rounds must be >= 0 and chains >= 1")
        for field, text in (("{problem}", critique_template), ("{solution}", critique_template),
                            ("{feedback}", revise_template), ("{solution}", revise_template)):
            if field not in text:
                raise ValueError(f"self_refine template is missing {field}")
        self.role, self.critic, self.rounds, self.chains = role, critic or role, rounds, chains
        self.selector, self.threshold = selector, threshold
        self.critique_t, self.revise_t = critique_template, revise_template
        self.done_phrase, self.feedback_tokens = done_phrase.lower(), feedback_tokens

    async def solve(self, problem: Problem, ctx: StrategyContext) -> Outcome:
        cands = list(await asyncio.gather(*(self.chain(problem, ctx, i) for i in range(self.chains))))
        votes = Counter(c.answer for c in cands if c.answer is not None)
        if not votes:
            return Outcome(Answer(None, info={"reason": "no chain had an answer"}), cands)
        best = max(votes, key=lambda a: votes[a])
        first = next(c for c in cands if c.answer == best)
        return Outcome(Answer(best, first.text, first.index, {"votes": dict(votes)}), cands)

    async def _satisfied(self, problem: Problem, ctx: StrategyContext, cand: Candidate) -> bool:
        if self.selector is None:
            return False
        if self.selector not in ctx.selectors:
            raise KeyError(f"self_refine: selector '{self.selector}' is not under 'selectors:'")
        (score,) = await ctx.selectors[self.selector].score(problem, [cand], ctx)
        cand.scores[self.selector] = float(score)
        return score >= self.threshold

    async def chain(self, problem: Problem, ctx: StrategyContext, index: int) -> Candidate:
        policy, critic = ctx.role(self.role), ctx.role(self.critic)
        gen = await policy.generate(policy.prompt(), policy.sampling(n=1), call=ctx.call("draft", index))
        cand = ctx.candidates(gen, self.role, start=index, iid=False)[0]
        history: list[dict[str, Any]] = []
        total = cand.completion_tokens
        for r in range(self.rounds):
            if await self._satisfied(problem, ctx, cand):
                break
            ask = self.critique_t.format(problem=problem.problem, solution=cand.text)
            feedback = (await critic.generate(critic.render([{"role": "user", "content": ask}]),
                                              critic.sampling(n=1, max_tokens=self.feedback_tokens),
                                              call=ctx.call("critique", index, r))).completions[0]
            history.append({"round": r, "feedback": feedback.text})
            total += len(feedback.token_ids)
            if self.done_phrase in feedback.text.lower():
                break
            ask = self.revise_t.format(problem=problem.problem, solution=cand.text, feedback=feedback.text)
            gen = await policy.generate(policy.render([{"role": "user", "content": ask}]), policy.sampling(n=1),
                                        call=ctx.call("revise", index, r))
            cand = ctx.candidates(gen, self.role, start=index, iid=False)[0]
            total += cand.completion_tokens
        cand.meta.update(rounds=len(history), history=history, chain_tokens=total)
        return cand
