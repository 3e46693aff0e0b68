"""The cost ledger: one entry per backend call (role, uncached/cached prompt tokens, completion
tokens, seconds, eFLOPs under the run's cost model), with totals per problem, per role and per run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

from tts.cost.model import CostModel, KineticsCost, Usage
from tts.cost.shape import ModelShape


GRADER_ROLE_PREFIX = "grader:"  # ledger name of a role a grader calls: grading cost, kept apart from strategy cost


@dataclass
class LedgerEntry:
    """One backend call as the ledger saw it."""

    problem_id: str
    role: str
    kind: str  # generate | stream | score | learn
    n: int = 1
    prompt_tokens: int = 0  # uncached prompt tokens (what the engine had to prefill)
    cached_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    eflops: float = 0.0
    spec_accepted_tokens: int = 0  # speculative decoding: draft tokens the target accepted
    spec_draft_tokens: int = 0
    call: str = ""  # the call path that seeded it (`answer/3`), so a candidate's cost is its calls' sum

    @property
    def tokens(self) -> int:
        """Budget tokens: uncached prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Totals:
    """Summed ledger entries."""

    calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    eflops: float = 0.0
    spec_accepted_tokens: int = 0
    spec_draft_tokens: int = 0

    def add(self, e: LedgerEntry) -> None:
        self.calls += 1
        self.prompt_tokens += e.prompt_tokens
        self.cached_tokens += e.cached_tokens
        self.completion_tokens += e.completion_tokens
        self.seconds += e.seconds
        self.eflops += e.eflops
        self.spec_accepted_tokens += e.spec_accepted_tokens
        self.spec_draft_tokens += e.spec_draft_tokens

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, float]:
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens, "cached_tokens": self.cached_tokens,
                "completion_tokens": self.completion_tokens, "seconds": self.seconds, "eflops": self.eflops,
                "spec_accepted_tokens": self.spec_accepted_tokens, "spec_draft_tokens": self.spec_draft_tokens,
                "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict) -> "Totals":
        return cls(**{f.name: data.get(f.name, 0) for f in fields(cls)})


class Ledger:
    """Collects every call of a run; `hooks` see each entry as it lands (progress, budgets)."""

    def __init__(self, cost_model: CostModel | None = None) -> None:
        self.cost_model = cost_model if cost_model is not None else KineticsCost()
        # Live entries in arrival order, and the same entries by problem: a problem's totals and its
        # forgetting cost its own calls, not every call in flight (a run holds thousands at once).
        self._all: dict[int, LedgerEntry] = {}
        self._by_problem: dict[str, list[LedgerEntry]] = defaultdict(list)
        self.hooks: list[Callable[[LedgerEntry], None]] = []

    @property
    def entries(self) -> list[LedgerEntry]:
        """Every live entry, in the order recorded."""
        return list(self._all.values())

    def problem_entries(self, problem_id: str) -> list[LedgerEntry]:
        return list(self._by_problem.get(problem_id, ()))

    @property
    def cost_name(self) -> str:
        return self.cost_model.name

    def cost(self, shape: ModelShape | None, usage: Usage) -> float:
        """eFLOPs of a call under the run's cost model (0 when the backend reports no shape)."""
        return 0.0 if shape is None else float(self.cost_model(shape, usage))

    def record(self, entry: LedgerEntry) -> None:
        self._all[id(entry)] = entry
        self._by_problem[entry.problem_id].append(entry)
        for hook in self.hooks:
            hook(entry)

    def _select(self, problem_id: str | None) -> Iterable[LedgerEntry]:
        return self._all.values() if problem_id is None else self._by_problem.get(problem_id, ())

    def totals(self, problem_id: str | None = None) -> Totals:
        t = Totals()
        for e in self._select(problem_id):
            t.add(e)
        return t

    def by_role(self, problem_id: str | None = None) -> dict[str, Totals]:
        out: dict[str, Totals] = defaultdict(Totals)
        for e in self._select(problem_id):
            out[e.role].add(e)
        return dict(out)

    def forget(self, problem_id: str) -> None:
        """Drop a finished problem's entries once its record holds them (keeps memory flat)."""
        for e in self._by_problem.pop(problem_id, ()):
            self._all.pop(id(e), None)