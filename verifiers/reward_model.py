"""Outcome reward models as selectors: a generative yes/no scorer on any recipe role (probability of
"yes" from prefill-only `score` calls) and a classifier reward head loaded from transformers
(batched across candidates and problems). Both land in the ledger and the budget."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from tts.cost.model import Usage
from tts.types import Candidate, Problem
from tts.verifiers.base import Selector
from tts.verifiers.head_engine import make_head
from tts.verifiers.prompted import (NO_WORDS, VERIFY_TEMPLATE, YES_WORDS, render_verdict_prompt, verdict_tokens,
                                yes_probability)


def _check_template(template: str, fields: tuple[str, ...] = ("{problem}", "{solution}")) -> str:
    missing = [f for f in fields if f not in template]
    if missing:
        raise ValueError(f"template must contain {' and '.join(missing)}")
    return template


class GenerativeRewardModel(Selector):
    """P(yes) that a candidate is correct, asked of the recipe role `role` (any backend that can
    `score`); the verdict prompt is rendered with the role's chat template when it has one."""

    name = "generative_rm"

    def __init__(self, role: str = "verifier", template: str = VERIFY_TEMPLATE,
                 yes: list[str] | None = None, no: list[str] | None = None,
                 answer_prefix: str = "Answer:", max_solution_chars: int = 8000) -> None:
        self.role, self.template = role, _check_template(template)
        self.yes, self.no = tuple(yes or YES_WORDS), tuple(no or NO_WORDS)
        self.answer_prefix, self.max_chars = answer_prefix, max_solution_chars

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        role = ctx.role(self.role)
        role.backend.capabilities.require(f"{type(role.backend).__name__} (role '{self.role}')", scoring=True)
        yes_ids, no_ids = verdict_tokens(role, self.yes, self.no)

        async def one(c: Candidate) -> float:
            text = self.template.format(problem=problem.problem, solution=c.text[-self.max_chars:])
            return await yes_probability(role, render_verdict_prompt(role, text, self.answer_prefix), yes_ids, no_ids)

        return list(await asyncio.gather(*(one(c) for c in candidates)))


class ClassifierRewardModel(Selector):
    """A sequence-classification reward head (e.g. a Skywork- or ArmoRM-style model). One label: the
    reward through a sigmoid (`transform: sigmoid`, the default: a positive weight that weighted
    voting can sum) or as is (`raw`; best-of-N ranks the same either way). Two labels: the
    probability of label 1. The pair is rendered as a chat (user: problem, assistant: solution)
    when the tokenizer has a template and `chat` is not false. `backend: vllm` serves the head with
    vLLM's pooling runner (`engine:` takes the vllm backend's arguments)."""

    name = "reward_model"

    def __init__(self, model: str, device: str = "cpu", dtype: str = "auto", batch_size: int = 16,
                 batch_wait_ms: float = 5.0, chat: bool | None = None,
                 template: str = "{problem}\n\n{solution}", max_tokens: int = 4096,
                 trust_remote_code: bool = False, transform: str = "sigmoid", backend: str = "hf",
                 engine: dict[str, Any] | None = None) -> None:
        if transform not in ("sigmoid", "raw"):
            raise ValueError(f"transform must be 'sigmoid' or 'raw', got '{transform}'")
        self.engine = make_head(backend, model, "sequence", device=device, dtype=dtype, batch_size=batch_size,
                                batch_wait_ms=batch_wait_ms, trust_remote_code=trust_remote_code, **(engine or {}))
        self.transform = transform
        self.chat, self.template, self.max_tokens = chat, _check_template(template), max_tokens

    def encode(self, problem: str, solution: str) -> list[int]:
        tok = self.engine.tokenizer
        if self.chat is not False and getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "user", "content": problem},
                                            {"role": "assistant", "content": solution}], tokenize=False)
            ids = tok.encode(text, add_special_tokens=False)
        else:
            ids = tok.encode(self.template.format(problem=problem, solution=solution), add_special_tokens=True)
        return list(ids)[-self.max_tokens:]

    def reward(self, row: list[float]) -> float:
        if len(row) == 1:
            return float(row[0]) if self.transform == "raw" else 1.0 / (1.0 + math.exp(-row[0]))
        exp = [math.exp(x - max(row)) for x in row]
        return exp[1] / sum(exp)

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        await self.engine.start()

        async def one(c: Candidate) -> float:
            ids = self.encode(problem.problem, c.text)
            row = await ctx.run_external(self.name, self.engine.shape, Usage("score", len(ids)),
                                         lambda: self.engine.logits(ids))
            return self.reward(row)

        return list(await asyncio.gather(*(one(c) for c in candidates)))

    async def close(self) -> None:
        await self.engine.close()
