"""LLM-as-judge selectors on any recipe role (costs land in the ledger under that role, `judge` by
default). Pointwise: the probability of "yes" where the backend can score, else a verdict parsed
from generated text. Pairwise: each pair is judged in both orders (position swapped) and the two
verdicts averaged, which cancels a judge's preference for the first or second slot; candidates are
ranked by round-robin win rate or by how far they get in a knockout tournament."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tts.types import Candidate, Problem
from tts.verifiers.base import Selector
from tts.verifiers.prompted import (NO_WORDS, VERIFY_TEMPLATE, YES_WORDS, parse_verdict, render_verdict_prompt,
                                verdict_tokens, yes_probability)

PAIR_TEMPLATE = ("Problem:\n{problem}\n\nSolution A:\n{a}\n\nSolution B:\n{b}\n\n"
                 "Which solution is correct? Answer A or B.")
MODES = ("pointwise", "pairwise")
PAIRINGS = ("round_robin", "tournament")


class Judge(Selector):
    """Scores candidates with a judge model; higher is better, in [0, 1]."""

    name = "judge"

    def __init__(self, role: str = "judge", mode: str = "pointwise", pairing: str = "round_robin",
                 template: str = VERIFY_TEMPLATE, pair_template: str = PAIR_TEMPLATE,
                 answer_prefix: str = "Answer:", max_tokens: int = 64, max_solution_chars: int = 6000,
                 use_logprobs: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
        if pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got '{pairing}'")
        for field, text in (("{problem}", template), ("{solution}", template), ("{a}", pair_template),
                            ("{b}", pair_template)):
            if field not in text:
                raise ValueError(f"judge template is missing {field}")
        self.role, self.mode, self.pairing = role, mode, pairing
        self.template, self.pair_template, self.answer_prefix = template, pair_template, answer_prefix
        self.max_tokens, self.max_chars, self.use_logprobs = max_tokens, max_solution_chars, use_logprobs

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        role = ctx.role(self.role)
        if self.mode == "pointwise":
            return list(await asyncio.gather(*(self._pointwise(role, problem, c) for c in candidates)))
        if len(candidates) < 2:
            return [1.0] * len(candidates)
        if self.pairing == "round_robin":
            return await self._round_robin(role, problem, candidates)
        return await self._tournament(role, problem, candidates, ctx)

    def _scores(self, role: Any) -> bool:
        return self.use_logprobs and role.backend.capabilities.scoring

    async def _verdict(self, role: Any, text: str, yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """P(first option) by log-probs, else parsed from a short greedy generation (0.5 if unclear)."""
        prompt = render_verdict_prompt(role, text, self.answer_prefix)
        if self._scores(role):
            return await yes_probability(role, prompt, *verdict_tokens(role, yes, no))
        gen = await role.generate(prompt, role.sampling(n=1, temperature=0.0, max_tokens=self.max_tokens))
        verdict = _pick(gen.completions[0].text, yes, no)
        return 0.5 if verdict is None else verdict

    async def _pointwise(self, role: Any, problem: Problem, c: Candidate) -> float:
        text = self.template.format(problem=problem.problem, solution=c.text[-self.max_chars:])
        return await self._verdict(role, text, YES_WORDS, NO_WORDS)

    async def prefer(self, role: Any, problem: Problem, a: Candidate, b: Candidate) -> float:
        """P(a is better than b), averaged over both presentation orders."""
        def text(x: Candidate, y: Candidate) -> str:
            return self.pair_template.format(problem=problem.problem, a=x.text[-self.max_chars:],
                                             b=y.text[-self.max_chars:])
        a_first, b_first = await asyncio.gather(self._verdict(role, text(a, b), _A, _B),
                                                self._verdict(role, text(b, a), _A, _B))
        return (a_first + (1.0 - b_first)) / 2

    async def _round_robin(self, role: Any, problem: Problem, cands: list[Candidate]) -> list[float]:
        pairs = list(itertools.combinations(range(len(cands)), 2))
        probs = await asyncio.gather(*(self.prefer(role, problem, cands[i], cands[j]) for i, j in pairs))
        wins = [0.0] * len(cands)
        for (i, j), p in zip(pairs, probs):
            wins[i] += p
            wins[j] += 1.0 - p
        return [w / (len(cands) - 1) for w in wins]

    async def _tournament(self, role: Any, problem: Problem, cands: list[Candidate], ctx: Any) -> list[float]:
        """Knockout in random order (the context's rng); a bye advances an odd one out. Score =
        rounds survived / rounds in the bracket."""
        alive = list(range(len(cands)))
        ctx.rng.shuffle(alive)
        survived = [0] * len(cands)
        rounds = 0
        while len(alive) > 1:
            rounds += 1
            pairs = [(alive[k], alive[k + 1]) for k in range(0, len(alive) - 1, 2)]
            probs = await asyncio.gather(*(self.prefer(role, problem, cands[i], cands[j]) for i, j in pairs))
            nxt = [i if p >= 0.5 else j for (i, j), p in zip(pairs, probs)]
            if len(alive) % 2:
                nxt.append(alive[-1])
            for i in nxt:
                survived[i] += 1
            alive = nxt
        return [s / rounds for s in survived]


_A = ("A", " A")
_B = ("B", " B")


def _pick(text: str, first: tuple[str, ...], second: tuple[str, ...]) -> float | None:
    """1.0 / 0.0 when the reply names the first / second option (A/B or yes/no), else None."""
    if first == _A:
        head = text[:2000].strip()
        for token in head.replace("*", " ").replace(".", " ").split():
            if token in ("A", "B"):
                return 1.0 if token == "A" else 0.0
        return None
    return parse_verdict(text)
