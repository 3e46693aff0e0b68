"""The model-judge fallback of the `math` grader: for text answers no rule can decide (`\\text{odd
function}` vs `odd`), a recipe role is asked whether two answers say the same. Its calls go through
the grading context, so they are ledgered (as `grader:<role>`) like any call."""

from __future__ import annotations

import re
from typing import Any

from tts.verifiers.math_normalize import as_number, clean
from tts.verifiers.prompted import NO_WORDS, YES_WORDS, parse_verdict, render_verdict_prompt, verdict_tokens, yes_probability

JUDGE_TEMPLATE = ("Problem:\n{problem}\n\nReference answer: {reference}\nStudent's final answer: {answer}\n\n"
                  "Does the student's final answer mean the same as the reference answer? Answer yes or no.")
JUDGE_MAX_CHARS = 300  # longer answers are not shown to the judge


def is_text(answer: str) -> bool:
    """The answer has words (three or more letters outside LaTeX commands), not only math."""
    return bool(re.search(r"[A-Za-z]{3,}", re.sub(r"\\[A-Za-z]+", " ", clean(answer))))


def needs_judge(answer: str | None, reference: str | None) -> bool:
    """Undecidable by the rules: words on either side, not two numbers, short enough to show."""
    if not answer or not reference or len(answer) > JUDGE_MAX_CHARS:
        return False
    if as_number(clean(answer)) is not None and as_number(clean(reference)) is not None:
        return False
    return is_text(answer) or is_text(reference)


async def judge_same(role: Any, problem: str, answer: str, reference: str, template: str = JUDGE_TEMPLATE,
                     max_tokens: int = 8) -> bool:
    """The judge's verdict: P(yes) > 0.5 where the backend scores, else a parsed greedy reply."""
    text = template.format(problem=problem[-2000:], reference=reference, answer=answer)
    prompt = render_verdict_prompt(role, text)
    if role.backend.capabilities.scoring:
        return await yes_probability(role, prompt, *verdict_tokens(role, YES_WORDS, NO_WORDS)) > 0.5
    gen = await role.generate(prompt, role.sampling(n=1, temperature=0.0, max_tokens=max_tokens))
    return (parse_verdict(gen.completions[0].text) or 0.0) > 0.5
