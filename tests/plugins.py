"""Components referenced by dotted path from test recipes (a plug-in without packaging)."""

from __future__ import annotations

import json
from pathlib import Path

from tts.strategies.agentless import Agentless
from tts.strategies.sample import SampleGenerator
from tts.types import Candidate


class CrashOn(SampleGenerator):
    """Plain sampling, except that it raises on one chosen problem id."""

    def __init__(self, problem_id: str, role: str = "policy") -> None:
        super().__init__(role=role)
        self.problem_id = problem_id

    async def sample(self, problem, ctx, n):
        if problem.id == self.problem_id:
            raise RuntimeError(f"planted failure on {problem.id}")
        return await super().sample(problem, ctx, n)


class UnwritableOn(SampleGenerator):
    """Plain sampling, except that one problem's first candidate carries a value JSON cannot hold."""

    def __init__(self, problem_id: str, value: str = "object", role: str = "policy") -> None:
        super().__init__(role=role)
        self.problem_id, self.value = problem_id, value

    async def sample(self, problem, ctx, n):
        cands = await super().sample(problem, ctx, n)
        if problem.id == self.problem_id and cands:
            cands[0].meta["probe"] = object() if self.value == "object" else float("nan")
        return cands


class PlantedAgentless(Agentless):
    """Agentless plus known patches per instance (a JSON file `{instance_id: [patch, ...]}`), for
    tests where a tiny model cannot write a fix. Planted candidates are not i.i.d. samples, so the
    sweep (pass@k, maj@k) leaves such problems out instead of counting them."""

    def __init__(self, planted: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.planted = json.loads(Path(planted).read_text())

    async def sample(self, problem, ctx, n):
        out = await super().sample(problem, ctx, n)
        for j, patch in enumerate(self.planted.get(problem.id, [])):
            out.append(Candidate(problem.id, len(out), "planted", None, [], patch, answer=patch,
                                 iid=False, meta={"planted": j}))
        return out


class Rounds(SampleGenerator):
    """Samples in rounds of `per_round` without checking the budget first, so a round the budget
    cannot cover raises BudgetExhausted after earlier rounds were paid for."""

    def __init__(self, per_round: int = 2, role: str = "policy") -> None:
        super().__init__(role=role)
        self.per_round = per_round

    async def sample(self, problem, ctx, n):
        role, out = ctx.role(self.role), []
        while len(out) < n:
            gen = await role.generate(role.prompt(), role.sampling(n=self.per_round), call=f"round/{len(out)}")
            out += ctx.candidates(gen, self.role, start=len(out))
        return out
