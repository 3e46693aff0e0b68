"""Execution signals for SWE-bench candidates, as selectors (each runs in the sandbox):

- `swe_regression`: pass rate of existing tests that passed before the edit (the instance's
  PASS_TO_PASS, or the `tests:` you give) — never FAIL_TO_PASS.
- `swe_testgen`: reproduction scripts a model writes from the issue (exit 0 = fixed, 2 = not
  fixed, 1 = crash); a candidate's score is the share of scripts that exit 0 on it (its votes).
  `tests_file:` ({instance_id: [script, ...]}) supplies scripts instead of a model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tts.types import Candidate, Problem
from tts.verifiers.base import Selector
from tts.verifiers.code_tests import python_blocks
from tts.verifiers.sandbox import sandbox_from
from tts.verifiers.swebench import Workspace, pytest_ids

WRITE_TEST = """Write a standalone Python script that reproduces this issue in the repository {repo}
(the repository root is the current directory). Exit with status 0 if the issue is fixed, 2 if it
is not, and let unexpected errors crash (status 1). Reply with the script in one ```python block.

Issue:
{issue}
"""


class Regression(Selector):
    name = "swe_regression"

    def __init__(self, tests: list[str] | None = None, max_tests: int | None = None, timeout: float = 600.0,
                 sandbox: dict[str, Any] | None = None) -> None:
        self.tests, self.max_tests = tests, max_tests
        self.workspace = Workspace(sandbox_from(sandbox), timeout=timeout)

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        tests = pytest_ids(list(self.tests or problem.meta.get("PASS_TO_PASS", []))[: self.max_tests], problem.id)
        patches = sorted({c.answer for c in candidates if c.answer})
        runs = await asyncio.gather(*(self.workspace.run(problem, [p], tests) for p in patches))
        rate = {}
        for p, r in zip(patches, runs):
            status = r.get("status", {})
            rate[p] = (sum(v == "PASSED" for v in status.values()) / len(status) if status else 1.0) \
                if r.get("applied") else 0.0
        return [rate.get(c.answer, 0.0) if c.answer else 0.0 for c in candidates]


class TestGen(Selector):
    name = "swe_testgen"

    def __init__(self, role: str = "policy", samples: int = 4, max_tokens: int = 1024, temperature: float = 0.8,
                 tests_file: str | None = None, timeout: float = 120.0, template: str = WRITE_TEST,
                 sandbox: dict[str, Any] | None = None) -> None:
        self.role, self.samples, self.max_tokens, self.temperature = role, samples, max_tokens, temperature
        self.planted = json.loads(Path(tests_file).expanduser().read_text()) if tests_file else None
        self.template = template
        self.workspace = Workspace(sandbox_from(sandbox), timeout=timeout)

    async def scripts(self, problem: Problem, ctx: Any) -> list[str]:
        if self.planted is not None:
            return list(self.planted.get(problem.id, []))
        role = ctx.role(self.role)
        ask = self.template.format(repo=problem.meta.get("repo", ""), issue=problem.problem)
        gen = await role.generate(role.render([{"role": "user", "content": ask}]),
                                  role.sampling(n=self.samples, max_tokens=self.max_tokens,
                                                temperature=self.temperature), call="swe_testgen")
        found = [python_blocks(c.text) for c in gen.completions]
        return [blocks[0] for blocks in found if blocks]

    async def exit_codes(self, problem: Problem, patches: list[str], scripts: list[str]) -> list[list[int | None]]:
        """exit_codes[i][j]: script j run on patch i."""
        runs = await asyncio.gather(*(self.workspace.run(problem, [p], script=s) for p in patches for s in scripts))
        codes = [r.get("exit_code") if r.get("applied") else None for r in runs]
        return [codes[i * len(scripts):(i + 1) * len(scripts)] for i in range(len(patches))]

    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]:
        scripts = await self.scripts(problem, ctx)
        patches = sorted({c.answer for c in candidates if c.answer})
        if not scripts or not patches:
            return [0.0] * len(candidates)
        table = dict(zip(patches, await self.exit_codes(problem, patches, scripts)))
        out = []
        for c in candidates:
            codes = table.get(c.answer) if c.answer else None
            votes = sum(1 for x in codes if x == 0) if codes else 0
            c.meta["testgen"] = {"scripts": len(scripts), "votes": votes, "exit_codes": codes}
            out.append(votes / len(scripts))
        return out
