"""Verification prompts for a model role, and the probability the model puts on "yes". Shared by
the generative reward model and the LLM judge, so both read a verdict the same way."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

VERIFY_TEMPLATE = ("Problem:\n{problem}\n\nProposed solution:\n{solution}\n\n"
                   "Is the proposed solution correct? Answer yes or no.")
YES_WORDS = ("yes", "Yes", " yes", " Yes")
NO_WORDS = ("no", "No", " no", " No")


def render_verdict_prompt(role: Any, text: str, answer_prefix: str = "Answer:") -> list[int]:
    """Token ids asking `role` for a verdict on `text`: a user turn under a chat template, else
    the text followed by `answer_prefix` (the next token is the verdict)."""
    if role.uses_chat:
        return role.render([{"role": "user", "content": text}])
    return list(role.tokenizer.encode(f"{text}\n{answer_prefix}", add_special_tokens=True))


def first_tokens(role: Any, words: tuple[str, ...] | list[str]) -> list[int]:
    """Distinct first token ids of each word (the verdict is read from the next token only)."""
    out: list[int] = []
    for word in words:
        ids = role.encode(word)
        if ids and ids[0] not in out:
            out.append(ids[0])
    if not out:
        raise ValueError(f"none of {list(words)} encodes to a token")
    return out


def verdict_tokens(role: Any, yes: tuple[str, ...] | list[str],
                   no: tuple[str, ...] | list[str]) -> tuple[list[int], list[int]]:
    """First tokens of the yes and no words, without any token both sides start with (with a
    small vocabulary " yes" and " no" may both begin with a bare space, which says nothing)."""
    yes_ids, no_ids = first_tokens(role, yes), first_tokens(role, no)
    shared = set(yes_ids) & set(no_ids)
    yes_ids = [t for t in yes_ids if t not in shared]
    no_ids = [t for t in no_ids if t not in shared]
    if not yes_ids or not no_ids:
        raise ValueError(f"the verdict words {list(yes)} / {list(no)} cannot be told apart by their first token")
    return yes_ids, no_ids


async def yes_probability(role: Any, prompt_ids: list[int], yes_ids: list[int], no_ids: list[int]) -> float:
    """P(yes) / (P(yes) + P(no)) at the next token, each side summed over its token variants;
    one prefill-only `score` call per variant (batched by the backend, prefix cached on vLLM)."""
    overlap = set(yes_ids) & set(no_ids)
    if overlap:
        raise ValueError(f"yes and no share first tokens {sorted(overlap)}; choose other words")
    lps = await asyncio.gather(*(role.score(prompt_ids, [t]) for t in yes_ids + no_ids))
    probs = [math.exp(lp[0]) for lp in lps]
    p_yes, p_no = sum(probs[: len(yes_ids)]), sum(probs[len(yes_ids):])
    return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5


_VERDICT = re.compile(r"\b(yes|no|correct|incorrect|wrong|right)\b", re.IGNORECASE)
_SCORE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")


def parse_verdict(text: str) -> float | None:
    """A verdict from generated text: 'k/m' as k/m, else the first yes/no word (1.0 / 0.0), else
    None. Only the first 2,000 characters are read, so hostile output cannot stall the parser."""
    head = text[:2000]
    m = _SCORE.search(head)
    if m and float(m.group(2)) > 0:
        return max(0.0, min(1.0, float(m.group(1)) / float(m.group(2))))
    w = _VERDICT.search(head)
    if w is None:
        return None
    return 1.0 if w.group(1).lower() in ("yes", "correct", "right") else 0.0
