"""Choosing one of K candidate patches (or programs): R2E-Gym's hybrid verification and
CodeMonkeys' test voting, with the Best@K curve over random subsets (spec: swe-selection.md).

Signals per candidate: `ef` (an execution-free verifier's P(YES)), `regression` (pass rate of
existing tests), `testgen` (pass rate on model-written tests) and `votes` (model-written tests
that exit 0 on it). Selectors return the *tie set*; online a seeded random member is submitted,
offline the tie set's mean correctness is the expected value (list order never decides)."""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

from tts.verifiers.code_tests import python_blocks


@dataclass
class Scored:
    id: str
    patch: str = ""
    ef: float | None = None
    regression: float | None = None
    testgen: float | None = None
    votes: int | None = None
    correct: bool | None = None  # offline evaluation only


def _val(x: float | None) -> float:
    return -math.inf if x is None else x


def keep_max(cands: Sequence[Scored], field: str) -> list[Scored]:
    """The candidates whose `field` is maximal (all of them when every value ties)."""
    if not cands:
        return []
    top = max(_val(getattr(c, field)) for c in cands)
    return [c for c in cands if _val(getattr(c, field)) == top]


def select_execution_based(cands: Sequence[Scored]) -> list[Scored]:
    """EB: maximal regression pass rate, then maximal generated-test pass rate."""
    return keep_max(keep_max(cands, "regression"), "testgen")


def select_execution_free(cands: Sequence[Scored]) -> list[Scored]:
    """EF: maximal verifier score."""
    return keep_max(cands, "ef")


def hybrid_k(n: int, frac: float = 0.5, min_k: int = 3) -> int:
    """How many the EF stage keeps: all when n <= min_k, else max(min_k, floor(frac * n))."""
    return n if n <= min_k else max(min_k, math.floor(frac * n))


def select_hybrid(cands: Sequence[Scored], frac: float = 0.5, min_k: int = 3) -> list[Scored]:
    """R2E-Gym hybrid: the top k by (ef, regression, testgen), then maximal regression, testgen, ef.
    Candidates tied on all three at the cut-off are all kept (so order never decides)."""
    cands = list(cands)
    k = hybrid_k(len(cands), frac, min_k)
    key = lambda c: (_val(c.ef), _val(c.regression), _val(c.testgen))  # noqa: E731
    ranked = sorted(cands, key=key, reverse=True)
    if k < len(ranked):
        cut = key(ranked[k - 1])
        ranked = [c for c in ranked if key(c) >= cut]
    return keep_max(keep_max(keep_max(ranked, "regression"), "testgen"), "ef")


def expected_correct(tie_set: Sequence[Scored]) -> float:
    """The value of submitting a uniformly random member of the tie set."""
    return sum(bool(c.correct) for c in tie_set) / len(tie_set) if tie_set else 0.0


Selector = Callable[[Sequence[Scored]], list[Scored]]


def best_at_k_curve(cands: Sequence[Scored], selector: Selector, ks: Sequence[int], trials: int = 1000,
                    seed: int = 0) -> dict[int, dict[str, float]]:
    """Per k: mean and std over `trials` random subsets of size min(k, n), drawn without
    replacement, of the selector's expected correctness, and pass@k (any correct) on the same subsets."""
    rng, n, out = random.Random(seed), len(cands), {}
    for k in ks:
        size = min(k, n)
        vals, cover = [], []
        for _ in range(trials):
            subset = rng.sample(list(cands), size)
            vals.append(expected_correct(selector(subset)))
            cover.append(float(any(c.correct for c in subset)))
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / max(1, len(vals) - 1))
        out[k] = {"mean": mean, "std": std, "pass": sum(cover) / len(cover)}
    return out


def best_at_k_exact(cands: Sequence[Scored], selector: Selector, k: int) -> float:
    """The same expectation by enumerating every subset (small n only)."""
    subsets = list(itertools.combinations(cands, min(k, len(cands))))
    return sum(expected_correct(selector(list(s))) for s in subsets) / len(subsets)


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k: 1 - C(n - c, k) / C(n, k)."""
    k = min(k, n)
    return 1.0 if n - correct < k else 1.0 - math.comb(n - correct, k) / math.comb(n, k)


# -- CodeMonkeys ------------------------------------------------------------------------------------
def vote_counts(exit_codes: Sequence[Sequence[int | None]]) -> list[int]:
    """exit_codes[i][j]: test j on candidate i; a vote is exit 0 (1 = crash, 2 = not solved, None = timeout)."""
    return [sum(1 for code in row if code == 0) for row in exit_codes]


def shortlist(patches: Sequence[str], votes: Sequence[int], max_candidates: int = 3) -> list[int]:
    """Indices ordered by (most votes, shortest patch), exact duplicates and empty patches removed."""
    order = sorted((i for i, p in enumerate(patches) if p.strip()), key=lambda i: (-votes[i], len(patches[i]), i))
    seen, out = set(), []
    for i in order:
        if patches[i] not in seen:
            seen.add(patches[i])
            out.append(i)
    return out[:max_candidates]


def voting_expected(cands: Sequence[Scored]) -> float:
    """Offline value of voting alone: mean correctness over every max-vote candidate."""
    return expected_correct(keep_max(cands, "votes"))


SELECT_PROMPT = """You must choose which candidate patch fixes the issue.

Issue:
{issue}

Relevant files:
{context}

Candidates:
{candidates}

Example test script (exit 0 = issue solved, 2 = not solved, 1 = crash):
{example}

Each turn, either write a test script in one ```python block (it will be run on the original code
and on every candidate), or answer with <choice>N</choice> for the candidate you pick. Never both."""


@dataclass
class LoopResult:
    choice: int
    attempts: int
    fallback: bool
    transcript: list[dict[str, str]]


class SelectionLoop:
    """CodeMonkeys' selection trajectory: the model writes tests, sees their exit codes on the
    original code and on each shortlisted candidate, and finally names one; malformed turns get a
    corrective message; after `max_attempts` turns without a choice, candidate 0 is the fallback.

    `model(messages) -> str` is any chat call (temperature 0 in the reference); `runner(script,
    index)` runs a test script on candidate `index` (None = the original code) in the sandbox and
    returns (exit code, output)."""

    def __init__(self, model: Callable[[list[dict[str, str]]], Awaitable[str]],
                 runner: Callable[[str, int | None], Awaitable[tuple[int | None, str]]],
                 max_attempts: int = 8, max_output_chars: int = 8192) -> None:
        self.model, self.runner = model, runner
        self.max_attempts, self.max_output_chars = max_attempts, max_output_chars

    async def select(self, issue: str, context: str, diffs: Sequence[str], example_test: str = "") -> LoopResult:
        shown = "\n\n".join(f"Candidate {i}:\n{d}" for i, d in enumerate(diffs))
        messages = [{"role": "user", "content": SELECT_PROMPT.format(issue=issue, context=context or "(none)",
                                                                     candidates=shown, example=example_test or "(none)")}]
        for attempt in range(1, self.max_attempts + 1):
            reply = await self.model(messages)
            messages.append({"role": "assistant", "content": reply})
            script, choice = _parse_turn(reply, len(diffs))
            if (script is None) == (choice is None):
                messages.append({"role": "user", "content": "Reply with either one ```python test script or one "
                                 f"<choice>N</choice> with N in 0..{len(diffs) - 1}, not both and not neither."})
                continue
            if choice is not None:
                return LoopResult(choice, attempt, False, messages)
            messages.append({"role": "user", "content": await self._report(script, len(diffs))})
        return LoopResult(0, self.max_attempts, True, messages)

    async def _report(self, script: str, count: int) -> str:
        parts = []
        for index in [None, *range(count)]:
            code, output = await self.runner(script, index)
            where = "original code" if index is None else f"candidate {index}"
            parts.append(f"{where}: exit code {code}\n{output[-self.max_output_chars:]}")
        return "\n\n".join(parts)


def _parse_turn(reply: str, count: int) -> tuple[str | None, int | None]:
    blocks = python_blocks(reply)
    choices = re.findall(r"<choice>\s*(\d+)\s*</choice>", reply)
    script = blocks[0] if len(blocks) == 1 else None
    choice = int(choices[0]) if len(choices) == 1 and 0 <= int(choices[0]) < count else None
    if len(blocks) > 1 or len(choices) > 1:
        return None, None
    return script, choice
