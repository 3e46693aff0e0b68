"""Process reward models: a score per reasoning step, aggregated to one candidate score (min, last,
product or mean). Two readings of a PRM:

- `prm` (generative, any recipe role that can `score`): after each step comes `step_tag`, and the
  step's score is the probability of the `good` token there (Math-Shepherd convention, labels in
  place). Without `bad`, one prefill reads every step; with `bad`, each step is normalised
  P(good) / (P(good) + P(bad)) from one call per step and label (shared prefixes).
- `prm_head` (a token-classification head served by a recipe role, Qwen2.5-Math-PRM convention): steps
  joined by `step_token`; the step's score is the head's probability of label 1 at that token.
- `step_confidence` (no reward model): the policy's own geometric-mean token probability of each step.

`score_steps(problem, steps, ctx)` is the entry point a beam search calls on partial solutions."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from tts.types import Candidate, Problem
from tts.verifiers.base import Selector
from tts.verifiers.reward_model import head_moved
from tts.verifiers.prompted import first_tokens, render_verdict_prompt

STEP_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "min": min,
    "last": lambda s: s[-1],
    "product": math.prod,
    "mean": lambda s: sum(s) / len(s),
}


def split_steps(text: str, separator: str = "\n\n", max_steps: int = 64) -> list[str]:
    """Non-empty steps of a solution; beyond `max_steps` the rest is kept as one last step."""
    parts = [p for p in text.split(separator) if p.strip()]
    if len(parts) > max_steps:
        parts = parts[: max_steps - 1] + [separator.join(parts[max_steps - 1:])]
    return parts


class _StepScorer(Selector):
    def __init__(self, separator: str, aggregate: str, max_steps: int) -> None:
        if aggregate not in STEP_AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(STEP_AGGREGATES)}, got '{aggregate}'")
        if not separator:
            raise ValueError("separator must not be empty")
        self.separator, self.aggregate, self.max_steps = separator, aggregate, max_steps

    async def score_steps(self, problem: Problem, steps: list[str], ctx: Any) -> list[float]:
        raise NotImplementedError

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        async def one(c: Candidate) -> float:
            steps = split_steps(c.text, self.separator, self.max_steps)
            if not steps:
                return 0.0
            values = await self.score_steps(problem, steps, ctx)
            c.meta.setdefault("step_scores", {})[self.name] = values
            return STEP_AGGREGATES[self.aggregate](values)

        return list(await asyncio.gather(*(one(c) for c in candidates)))


class GenerativePRM(_StepScorer):
    """Step scores from a language-model PRM served as a recipe role."""

    name = "prm"

    def __init__(self, role: str = "prm", separator: str = "\n\n", step_tag: str = "\n",
                 good: str = "+", bad: str | None = None, aggregate: str = "min", max_steps: int = 64,
                 template: str = "{problem}") -> None:
        super().__init__(separator, aggregate, max_steps)
        if "{problem}" not in template:
            raise ValueError("template must contain {problem}")
        self.role, self.step_tag, self.good, self.bad, self.template = role, step_tag, good, bad, template

    async def score_steps(self, problem: Problem, steps: list[str], ctx: Any) -> list[float]:
        role = ctx.role(self.role)
        role.backend.capabilities.require(f"{type(role.backend).__name__} (role '{self.role}')", scoring=True)
        good = first_tokens(role, [self.good])[0]
        prompt = render_verdict_prompt(role, self.template.format(problem=problem.problem), answer_prefix="")
        chunks = [role.encode(step + self.step_tag) for step in steps]
        if self.bad is None:
            cont: list[int] = []
            at: list[int] = []
            for chunk in chunks:
                cont += chunk
                at.append(len(cont))
                cont.append(good)
            lps = await role.score(prompt, cont)
            return [math.exp(lps[i]) for i in at]
        bad = first_tokens(role, [self.bad])[0]
        prefixes, cont = [], list(prompt)
        for chunk in chunks:
            cont = cont + chunk
            prefixes.append(cont)
            cont = cont + [good]
        pairs = await asyncio.gather(*(asyncio.gather(role.score(p, [good]), role.score(p, [bad])) for p in prefixes))
        return [math.exp(g[0]) / (math.exp(g[0]) + math.exp(b[0])) for g, b in pairs]


class HeadPRM(_StepScorer):
    """Step scores from a token-classification PRM served by the recipe role `role` (`hf_head` with
    `head: token`, or `vllm` with `head: token`); probability of label 1 at each `step_token`."""

    name = "prm_head"

    def __init__(self, role: str = "prm", step_token: str = "<extra_0>", separator: str = "\n\n",
                 aggregate: str = "min", max_steps: int = 64, chat: bool | None = None,
                 system: str = "Please reason step by step, and put your final answer within \\boxed{}.",
                 max_tokens: int = 4096, model: str | None = None) -> None:
        if model is not None:
            raise head_moved(self.name, "token", role)
        super().__init__(separator, aggregate, max_steps)
        self.role = role
        self.step_token, self.chat, self.system, self.max_tokens = step_token, chat, system, max_tokens

    def encode(self, tok: Any, problem: str, steps: list[str]) -> tuple[list[int], int]:
        """The PRM's input (steps joined by the step token) with the role's tokenizer, and that token's id."""
        step_id = tok.convert_tokens_to_ids(self.step_token)
        if step_id is None or step_id == tok.unk_token_id:
            raise ValueError(f"step token {self.step_token!r} is not a single token of this PRM's tokenizer")
        answer = "".join(s + self.step_token for s in steps)
        if self.chat is not False and getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "system", "content": self.system},
                                            {"role": "user", "content": problem},
                                            {"role": "assistant", "content": answer}], tokenize=False)
            ids = tok.encode(text, add_special_tokens=False)
        else:
            ids = tok.encode(f"{problem}\n{answer}", add_special_tokens=True)
        return list(ids)[-self.max_tokens:], step_id

    async def score_steps(self, problem: Problem, steps: list[str], ctx: Any) -> list[float]:
        role = ctx.role(self.role)
        ids, step_id = self.encode(role.tokenizer, problem.problem, steps)
        rows = await role.classify(ids)
        out = []
        for tid, row in zip(ids, rows):
            if tid == step_id:
                exp = [math.exp(x - max(row)) for x in row]
                out.append(exp[1] / sum(exp) if len(row) > 1 else 1 / (1 + math.exp(-row[0])))
        return out or [0.0]


class StepConfidence(_StepScorer):
    """Step scores from the policy's own likelihood: exp(mean token log-probability) of each step
    given the recipe prompt and the steps before it, from one prefill on the role `role`. No reward
    model is needed; it rewards steps the model is sure of, so it is only as good as the model's
    calibration (the confidence-guided baseline a sceptic compares PRMs with)."""

    name = "step_confidence"

    def __init__(self, role: str = "policy", separator: str = "\n\n", aggregate: str = "min",
                 max_steps: int = 64) -> None:
        super().__init__(separator, aggregate, max_steps)
        self.role = role

    async def score_steps(self, problem: Problem, steps: list[str], ctx: Any) -> list[float]:
        role = ctx.role(self.role)
        role.backend.capabilities.require(f"{type(role.backend).__name__} (role '{self.role}')", scoring=True)
        chunks = [role.encode(step + (self.separator if i < len(steps) - 1 else "")) for i, step in enumerate(steps)]
        lps = await role.score(role.prompt(), [t for chunk in chunks for t in chunk])
        out, at = [], 0
        for chunk in chunks:
            part = lps[at: at + len(chunk)]
            at += len(chunk)
            out.append(math.exp(sum(part) / len(part)) if part else 0.0)
        return out
