"""Step-level search guided by a process reward model (search-and-learn style):

- `beam_search`: keep `beam_width` partial solutions; each depth, every live beam proposes
  `expansions` next steps (sampling stops at the step separator), the PRM scores each extended
  partial solution (optionally after a greedy `lookahead` of k more steps), and the best
  `beam_width` survive; a beam that ends (end of text, or no new step) is complete.
- `dvts` (diverse verifier tree search): `subtrees` independent searches of width 1, each keeping
  its best expansion per depth, so the final pool is diverse.

All expansions of a depth are sent together (and problems run concurrently), so the backend batches
them. Steps are continued by token ids; nothing is re-tokenised. The answer is the completed
solution with the highest PRM score (`select: best`) or a PRM-weighted vote (`select: weighted`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tts.budget import BudgetExhausted
from tts.context import StrategyContext
from tts.seeds import call_path
from tts.strategies.base import Search
from tts.types import Answer, Candidate, Outcome, Problem
from tts.verifiers.prm import STEP_AGGREGATES


@dataclass
class Beam:
    ids: list[int] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    score: float = 0.0
    done: bool = False


class BeamSearch(Search):
    """PRM-guided beam search over reasoning steps."""

    name = "beam_search"

    def __init__(self, role: str = "policy", prm: str = "prm", beam_width: int = 4, expansions: int = 4,
                 max_depth: int = 20, separator: str = "\n\n", step_tokens: int = 256, lookahead: int = 0,
                 select: str = "best") -> None:
        if beam_width < 1 or expansions < 1 or max_depth < 1 or lookahead < 0:
            raise ValueError("beam_width, expansions and max_depth must be >= 1, lookahead >= 0")
        if select not in ("best", "weighted"):
            raise ValueError(f"select must be 'best' or 'weighted', got '{select}'")
        self.role, self.prm, self.width, self.expansions = role, prm, beam_width, expansions
        self.max_depth, self.separator, self.step_tokens = max_depth, separator, step_tokens
        self.lookahead, self.select = lookahead, select

    def _scorer(self, ctx: StrategyContext) -> Any:
        sel = ctx.selectors.get(self.prm)
        if sel is None or not hasattr(sel, "score_steps"):
            raise KeyError(f"search '{self.name}' needs a step scorer named '{self.prm}' under 'selectors:' "
                           f"(prm or prm_head); have: {', '.join(ctx.selectors) or 'none'}")
        return sel

    async def solve(self, problem: Problem, ctx: StrategyContext) -> Outcome:
        done, info = await self.search(problem, ctx, self.width, self.expansions)
        return self.finish(problem, ctx, done, info)

    async def search(self, problem: Problem, ctx: StrategyContext, width: int, expansions: int,
                     tag: str = "beam") -> tuple[list[Beam], dict[str, Any]]:
        """One search; returns the completed beams (best first) and counters."""
        role, scorer = ctx.role(self.role), self._scorer(ctx)
        prompt = role.prompt()
        live, done, info = [Beam()], [], {"depths": 0, "expansions": 0}
        try:
            for depth in range(self.max_depth):
                info["depths"] = depth + 1
                # the root proposes width × expansions first steps; later each beam proposes `expansions`
                kids = await self._expand(ctx, role, prompt, live, expansions * (width if depth == 0 else 1),
                                          call_path(tag, f"d{depth}"))
                info["expansions"] += len(kids)
                await self._score(problem, ctx, scorer, role, prompt, kids, call_path(tag, f"d{depth}"))
                kids.sort(key=lambda b: -b.score)
                done += [b for b in kids if b.done]
                live = [b for b in kids if not b.done][:width]
                info.setdefault("live", []).append(len(live))
                if len(done) >= width or not live:
                    break
        except BudgetExhausted as exc:
            info["budget_exhausted"] = str(exc)
        pool = sorted(done or live, key=lambda b: -b.score)
        return pool, info

    async def _expand(self, ctx: StrategyContext, role: Any, prompt: list[int], beams: list[Beam],
                      k: int, call: str) -> list[Beam]:
        """k sampled next steps for every beam, all requests in flight together."""
        sampling = role.sampling(n=k, max_tokens=self.step_tokens, stop=(self.separator,),
                                 include_stop_str_in_output=True)

        async def one(i: int, beam: Beam) -> list[Beam]:
            gen = await role.generate(prompt + beam.ids, sampling, call=call_path(call, f"b{i}"))
            out = []
            for comp in gen.completions:
                text, at_separator = comp.text, comp.text.endswith(self.separator)
                # the end of text ends a solution; a separator or a step cut at step_tokens does not
                ended = (comp.finish_reason == "stop" and not at_separator) or not comp.token_ids
                step = text[: -len(self.separator)] if at_separator else text
                out.append(Beam(beam.ids + list(comp.token_ids), beam.steps + [step], 0.0, ended))
            return out

        groups = await asyncio.gather(*(one(i, b) for i, b in enumerate(beams)))
        return [b for g in groups for b in g]

    async def _score(self, problem: Problem, ctx: StrategyContext, scorer: Any, role: Any, prompt: list[int],
                     beams: list[Beam], call: str) -> None:
        async def one(i: int, beam: Beam) -> None:
            steps = [s for s in beam.steps if s.strip()] or [""]
            if self.lookahead and not beam.done:
                steps = steps + await self._rollout(role, prompt + beam.ids, call_path(call, f"look{i}"))
            values = await scorer.score_steps(problem, steps, ctx)
            beam.score = STEP_AGGREGATES[getattr(scorer, "aggregate", "last")](values)

        await asyncio.gather(*(one(i, b) for i, b in enumerate(beams)))

    async def _rollout(self, role: Any, ids: list[int], call: str) -> list[str]:
        """Greedy lookahead: up to `lookahead` more steps, scored but not kept."""
        steps: list[str] = []
        greedy = role.sampling(n=1, temperature=0.0, max_tokens=self.step_tokens, stop=(self.separator,),
                               include_stop_str_in_output=True)
        for j in range(self.lookahead):
            comp = (await role.generate(ids, greedy, call=call_path(call, j))).completions[0]
            ids = ids + list(comp.token_ids)
            steps.append(comp.text.removesuffix(self.separator))
            if not comp.text.endswith(self.separator):
                break
        return [s for s in steps if s.strip()]

    def finish(self, problem: Problem, ctx: StrategyContext, pool: list[Beam], info: dict[str, Any]) -> Outcome:
        role = ctx.role(self.role)
        cands = []
        for i, b in enumerate(pool):  # beams share their expansions: the search's cost is the record's
            cand = ctx.candidate(self.role, i, b.ids, role.decode(b.ids), eflops=0.0, iid=False,
                                 finish_reason="stop" if b.done else "length", meta={"steps": len(b.steps)})
            cand.scores[self.prm] = b.score
            cands.append(cand)
        return Outcome(self._answer(cands), cands, info)

    def _answer(self, cands: list[Candidate]) -> Answer:
        with_answer = [c for c in cands if c.answer is not None]
        if not with_answer:
            return Answer(None, info={"reason": "no completed solution had an answer"})
        if self.select == "best":
            top = max(with_answer, key=lambda c: c.scores[self.prm])
            return Answer(top.answer, top.text, top.index, {"score": top.scores[self.prm]})
        tally: dict[str, float] = defaultdict(float)
        for c in with_answer:
            tally[c.answer] += c.scores[self.prm]
        best = max(tally, key=lambda a: tally[a])
        first = next(c for c in with_answer if c.answer == best)
        return Answer(best, first.text, first.index, {"tally": dict(tally)})


class DVTS(BeamSearch):
    """Diverse verifier tree search: `subtrees` independent greedy-by-PRM searches of width 1."""

    name = "dvts"

    def __init__(self, subtrees: int = 4, expansions: int = 4, **kwargs: Any) -> None:
        kwargs.pop("beam_width", None)
        super().__init__(beam_width=1, expansions=expansions, **kwargs)
        if subtrees < 1:
            raise ValueError("subtrees must be >= 1")
        self.subtrees = subtrees

    async def solve(self, problem: Problem, ctx: StrategyContext) -> Outcome:
        results = await asyncio.gather(*(self.search(problem, ctx, 1, self.expansions, tag=f"tree{t}")
                                         for t in range(self.subtrees)))
        pool = [b for beams, _ in results for b in beams[:1]]
        info = {"subtrees": self.subtrees, "expansions": sum(i["expansions"] for _, i in results)}
        return self.finish(problem, ctx, sorted(pool, key=lambda b: -b.score), info)
