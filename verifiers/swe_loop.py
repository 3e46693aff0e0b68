"""CodeMonkeys' selection loop wired to a recipe role and the SWE-bench workspace: the model
writes test scripts, sees their exit codes on the original code and on each shortlisted patch
(run in the sandbox), and names one; the top-voted patch is the fallback."""

from __future__ import annotations

from typing import Any

from tts.types import Answer, Candidate, Problem
from tts.verifiers.swe_select import SelectionLoop
from tts.verifiers.swebench import Workspace


async def run_selection_loop(agg: Any, problem: Problem, shortlist: list[Candidate], ctx: Any,
                             fallback: Answer, workspace: Workspace | None = None) -> Answer:
    if len(shortlist) < 2:
        return fallback
    role = ctx.role(agg.role)
    workspace = workspace or Workspace()

    async def model(messages: list[dict[str, str]]) -> str:
        gen = await role.generate(role.render(messages), role.sampling(n=1, temperature=0.0,
                                                                      max_tokens=agg.max_tokens))
        return gen.completions[0].text

    async def runner(script: str, index: int | None) -> tuple[int | None, str]:
        patches = [] if index is None else [shortlist[index].answer]
        out = await workspace.run(problem, patches, script=script)
        return out.get("exit_code"), out.get("log", "")

    loop = SelectionLoop(model, runner, max_attempts=agg.max_attempts)
    result = await loop.select(problem.problem, "", [c.answer for c in shortlist])
    chosen = shortlist[result.choice]
    return Answer(chosen.answer, chosen.text, chosen.index,
                  {**fallback.info, "selection_attempts": result.attempts, "fallback": result.fallback})
