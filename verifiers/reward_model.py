"""Outcome reward models as selectors: a generative yes/no scorer on any recipe role (probability of
"yes" from prefill-only `score` calls) and a classifier reward head served by a recipe role (batched
across candidates and problems by its backend). Both land in the ledger and the budget."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from tts.types import Candidate, Problem
from tts.verifiers.base import Selector
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


def head_moved(name: str, head: str, role: str) -> ValueError:
    """The error for a selector still naming its own `model:` (heads are recipe roles now)."""
    return ValueError(f"{name}: `model:` moved to a recipe role — add `roles: {{{role}: {{backend: hf_head, model: M, "
                      f"engine: {{head: {head}}}}}}}` (or `backend: vllm`) and set `role: {role}`")


class ClassifierRewardModel(Selector):
    """A sequence-classification reward head (e.g. a Skywork- or ArmoRM-style model) served by the
    recipe role `role` (a backend that declares `classify`: `hf_head`, or `vllm` with `head:
    sequence`). One label: the reward through a sigmoid (`transform: sigmoid`, the default: a
    positive weight that weighted voting can sum) or as is (`raw`; best-of-N ranks the same either
    way). Two labels: the probability of label 1. The pair is rendered as a chat (user: problem,
    assistant: solution) when the role's tokenizer has a template and `chat` is not false."""

    name = "reward_model"

    def __init__(self, role: str = "reward_model", chat: bool | None = None,
                 template: str = "{problem}\n\n{solution}", max_tokens: int = 4096, transform: str = "sigmoid",
                 model: str | None = None) -> None:
        if model is not None:
            raise head_moved(self.name, "sequence", role)
        if transform not in ("sigmoid", "raw"):
            raise ValueError(f"transform must be 'sigmoid' or 'raw', got '{transform}'")
        self.role, self.transform = role, transform
        self.chat, self.template, self.max_tokens = chat, _check_template(template), max_tokens

    def encode(self, tok: Any, problem: str, solution: str) -> list[int]:
        """The head's input for one (problem, solution) pair, with the role's tokenizer `tok`."""
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
        role = ctx.role(self.role)

        async def one(c: Candidate) -> float:
            return self.reward(await role.classify(self.encode(role.tokenizer, problem.problem, c.text)))

        return list(await asyncio.gather(*(one(c) for c in candidates)))
