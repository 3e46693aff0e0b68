"""Budget forcing (s1, Muennighoff et al. 2025): control how long a model thinks.

Thinking runs until `think_end` (or the end of text). Ended before `min_thinking` tokens, the end is
dropped and `continuation` ("Wait") appended by token ids, at most `max_continuations` times; at
`max_thinking` tokens thinking is cut. Then `think_end` + `answer_prefix` are appended and the answer
is generated. Works on plain models too: `think_end` is any string (e.g. "Final answer:"), and
`think_start` is an optional assistant prefix. `chains` > 1 runs independent chains and votes.

Fast path (`native: true`): on a vllm backend started with a reasoning parser, with no minimum to
enforce, one request carries vLLM's own `thinking_token_budget`, which forces the end of thinking
at the cap inside the engine; the model then answers in the same request (no `answer_prefix`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tts.context import StrategyContext
from tts.strategies.base import Search
from tts.types import Answer, Candidate, Outcome, Problem


class BudgetForcing(Search):
    name = "budget_forcing"

    def __init__(self, role: str = "policy", think_start: str | None = None, think_end: str = "</think>",
                 min_thinking: int = 0, max_thinking: int = 4096, continuation: str = "Wait",
                 max_continuations: int = 2, answer_prefix: str = "\n", answer_tokens: int = 256,
                 chains: int = 1, native: bool = False) -> None:
        if max_thinking < 1 or min_thinking < 0 or min_thinking > max_thinking:
            raise ValueError("need 0 <= min_thinking <= max_thinking and max_thinking >= 1")
        if max_continuations < 0 or chains < 1 or not think_end:
            raise ValueError("max_continuations >= 0, chains >= 1 and a non-empty think_end are required")
        self.role, self.think_start, self.think_end = role, think_start, think_end
        self.min_thinking, self.max_thinking = min_thinking, max_thinking
        self.continuation, self.max_continuations = continuation, max_continuations
        self.answer_prefix, self.answer_tokens, self.chains = answer_prefix, answer_tokens, chains
        self.native = native

    async def solve(self, problem: Problem, ctx: StrategyContext) -> Outcome:
        cands = await asyncio.gather(*(self.chain(problem, ctx, i) for i in range(self.chains)))
        votes = Counter(c.answer for c in cands if c.answer is not None)
        if not votes:
            return Outcome(Answer(None, info={"reason": "no chain had an answer"}), list(cands))
        best = max(votes, key=lambda a: (votes[a], -min(c.index for c in cands if c.answer == a)))
        first = next(c for c in cands if c.answer == best)
        return Outcome(Answer(best, first.text, first.index, {"votes": dict(votes)}), list(cands))

    def _native_ok(self, role: Any) -> bool:
        return self.native and self.min_thinking == 0 and getattr(role.backend, "thinking_budget", False)

    async def _native_chain(self, problem: Problem, ctx: StrategyContext, index: int) -> Candidate:
        """One request; the engine ends thinking at the budget."""
        role = ctx.role(self.role)
        s = role.sampling(n=1, max_tokens=self.max_thinking + self.answer_tokens,
                          extra={**role.sampling().extra, "thinking_token_budget": self.max_thinking})
        comp = (await role.generate(role.prompt(self.think_start), s, call=ctx.call("native", index))).completions[0]
        end_ids = role.encode(self.think_end)
        ids = list(comp.token_ids)
        # split on token ids: delimiters are often special tokens, which detokenised text drops
        cut = next((i for i in range(len(ids)) if ids[i:i + len(end_ids)] == end_ids), len(ids))
        answer_text = role.decode(ids[cut + len(end_ids):])
        text = role.decode(ids[:cut]) + self.think_end + answer_text
        meta = {"thinking_tokens": cut, "continuations": 0, "ended_by": "native"}
        return ctx.candidate(self.role, index, ids, text, calls=(ctx.call("native", index),),
                             answer=ctx.extract(answer_text) or ctx.extract(text), iid=False,
                             finish_reason=comp.finish_reason, meta=meta)

    async def chain(self, problem: Problem, ctx: StrategyContext, index: int) -> Candidate:
        role = ctx.role(self.role)
        if self._native_ok(role):
            return await self._native_chain(problem, ctx, index)
        prompt = role.prompt(self.think_start)
        wait = role.encode(self.continuation)
        ids: list[int] = []
        thinking, generated, continuations, ended_by = 0, 0, 0, "max"  # thinking counts the forced words too
        while thinking < self.max_thinking:
            s = role.sampling(n=1, max_tokens=self.max_thinking - thinking, stop=(self.think_end,),
                              include_stop_str_in_output=False)
            comp = (await role.generate(prompt + ids, s, call=ctx.call("think", index, continuations))).completions[0]
            ids += comp.token_ids
            thinking += len(comp.token_ids)
            generated += len(comp.token_ids)
            if comp.finish_reason != "stop":
                break  # reached the thinking budget
            if thinking < self.min_thinking and continuations < self.max_continuations \
                    and thinking + len(wait) <= self.max_thinking:
                ids += wait  # suppress the early end: keep thinking
                thinking += len(wait)
                continuations += 1
                continue
            ended_by = "end"
            break
        thought = list(ids)
        ids += role.encode(self.think_end + self.answer_prefix)
        s = role.sampling(n=1, max_tokens=self.answer_tokens)
        comp = (await role.generate(prompt + ids, s, call=ctx.call("answer", index))).completions[0]
        answer_text = comp.text
        text = role.decode(thought) + self.think_end + self.answer_prefix + answer_text
        meta: dict[str, Any] = {"thinking_tokens": thinking, "continuations": continuations, "ended_by": ended_by}
        calls = (*(ctx.call("think", index, k) for k in range(continuations + 1)), ctx.call("answer", index))
        return ctx.candidate(self.role, index, thought + list(comp.token_ids), text, calls=calls,
                             answer=ctx.extract(answer_text) or ctx.extract(text),
                             completion_tokens=generated + len(comp.token_ids), iid=False,
                             finish_reason=comp.finish_reason, meta=meta)
