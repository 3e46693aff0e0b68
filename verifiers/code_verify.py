"""Execution-based verification of code: the `code` extractor, the `code_tests` grader (hidden
tests, the official harness programs) and the selectors that never see hidden tests:
`public_tests` (HumanEval docstring examples, MBPP's first assert) and `generated_tests` (asserts
a model writes for the problem; each candidate's pass rate on them). All code runs in the sandbox."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tts.types import Candidate, Problem
from tts.verifiers.base import Extractor, Grader, Selector
from tts.verifiers.code_tests import (entry_point, extract_code, hidden_check, parse_results, public_tests,
                                  runner_script, solution_module)
from tts.verifiers.sandbox import Sandbox, sandbox_from


class CodeExtractor(Extractor):
    """The program in a model's answer (fenced blocks, else the raw completion)."""

    name = "code"

    def extract(self, text: str) -> str | None:
        return extract_code(text)


class CodeTestsGrader(Grader):
    """1.0 iff the hidden tests pass in the sandbox (identical programs are run once)."""

    name = "code_tests"

    def __init__(self, sandbox: dict[str, Any] | None = None) -> None:
        self.sandbox = sandbox_from(sandbox)

    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]:
        unique = sorted({a for a in answers if a})
        results = await asyncio.gather(*(self.sandbox.run_python(hidden_check(problem, a)) for a in unique))
        passed = {a: r.ok for a, r in zip(unique, results)}
        return [1.0 if a and passed[a] else 0.0 for a in answers]


async def pass_rates(sandbox: Sandbox, problem: Problem, codes: list[str | None],
                     tests: list[str]) -> list[list[bool]]:
    """Per candidate, which of `tests` its program passes (one sandbox run per distinct program)."""
    if not tests:
        return [[] for _ in codes]
    unique = sorted({c for c in codes if c})
    runner = runner_script(tests)
    runs = await asyncio.gather(*(sandbox.run(["python", "-I", "-B", "run_tests.py"],
                                              {"solution.py": solution_module(problem, c), "run_tests.py": runner})
                                  for c in unique))
    table = {c: parse_results(r.stdout, len(tests)) for c, r in zip(unique, runs)}
    return [table[c] if c else [False] * len(tests) for c in codes]


class PublicTests(Selector):
    """Fraction of the problem's public tests each candidate passes (0 when it has none)."""

    name = "public_tests"

    def __init__(self, sandbox: dict[str, Any] | None = None) -> None:
        self.sandbox = sandbox_from(sandbox)

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        tests = public_tests(problem)
        rows = await pass_rates(self.sandbox, problem, [c.answer for c in candidates], tests)
        for cand, row in zip(candidates, rows):
            cand.meta["public_tests"] = row
        return [sum(r) / len(r) if r else 0.0 for r in rows]


GENERATE = ("{problem}\n\nWrite {count} different assert statements that check a correct implementation of "
            "`{entry}`. One assert per line, nothing else.\n")


class GeneratedTests(Selector):
    """Tests a model writes (asserts naming the entry point), then each candidate's pass rate on
    them. `samples` completions of the test prompt; the distinct asserts, up to `max_tests`."""

    name = "generated_tests"

    def __init__(self, role: str = "policy", samples: int = 2, count: int = 5, max_tests: int = 10,
                 max_tokens: int = 256, temperature: float = 0.8, template: str = GENERATE,
                 sandbox: dict[str, Any] | None = None) -> None:
        if "{problem}" not in template:
            raise ValueError("generated_tests template needs {problem}")
        self.role, self.samples, self.count, self.max_tests = role, samples, count, max_tests
        self.max_tokens, self.temperature, self.template = max_tokens, temperature, template
        self.sandbox = sandbox_from(sandbox)

    async def write_tests(self, problem: Problem, ctx: Any) -> list[str]:
        entry = entry_point(problem) or "the function"
        role = ctx.role(self.role)
        ask = self.template.format(problem=problem.problem, count=self.count, entry=entry)
        gen = await role.generate(role.render([{"role": "user", "content": ask}]),
                                  role.sampling(n=self.samples, max_tokens=self.max_tokens,
                                                temperature=self.temperature), call="generated_tests")
        return parse_asserts([c.text for c in gen.completions], entry, self.max_tests)

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        tests = await self.write_tests(problem, ctx)
        rows = await pass_rates(self.sandbox, problem, [c.answer for c in candidates], tests)
        for cand, row in zip(candidates, rows):
            cand.meta["generated_tests"] = {"tests": len(tests), "passed": sum(row)}
        return [sum(r) / len(r) if r else 0.0 for r in rows]


def parse_asserts(texts: list[str], entry: str | None, limit: int) -> list[str]:
    """Distinct one-line asserts that mention the entry point and parse as Python."""
    import ast

    found: list[str] = []
    for text in texts:
        for line in text.splitlines():
            line = line.strip().strip("`")
            if not line.startswith("assert ") or (entry and not re.search(rf"\b{re.escape(entry)}\s*\(", line)):
                continue
            try:
                ast.parse(line)
            except SyntaxError:
                continue
            if line not in found:
                found.append(line)
    return found[:limit]


class PatchExtractor(Extractor):
    """A unified diff in a model's answer: a ```diff block, else everything from the first `diff --git`
    or `--- a/` line (generators such as `agentless` set the patch themselves)."""

    name = "patch"

    def extract(self, text: str) -> str | None:
        block = re.findall(r"```(?:diff|patch)[ \t]*\n(.*?)```", text, re.S)
        if block:
            return block[-1] if block[-1].endswith("\n") else block[-1] + "\n"
        m = re.search(r"^(diff --git |--- a/)", text, re.M)
        return text[m.start():].rstrip() + "\n" if m else None
