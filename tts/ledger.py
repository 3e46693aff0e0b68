"""The cost ledger: one entry per backend call (role, uncached/cached prompt tokens, completion
tokens, seconds, eFLOPs), with totals per problem, per role and per run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from tts.cost.shape import ModelShape

# (shape, kind, uncached prompt tokens, completion tokens, n) -> eFLOPs. The cost issue plugs
# the Kinetics model in here; the default is the plain dense 2·P·T estimate.
CostFn = Callable[[ModelShape, str, int, int, int], float]


def dense_2pt(shape: ModelShape, kind: str, prompt_tokens: int, completion_tokens: int, n: int) -> float:
    """Plain dense estimate 2 · active parameters · tokens processed (no attention or memory term)."""
    return 2.0 * shape.active_params * (prompt_tokens + completion_tokens)


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
        return {**asdict(self), "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict) -> "Totals":
        return cls(**{f.name: data.get(f.name, 0) for f in fields(cls)})


class Ledger:
    """Collects every call of a run; `hooks` see each entry as it lands (progress, budgets)."""

    def __init__(self, cost_fn: CostFn = dense_2pt, cost_name: str = "dense-2PT") -> None:
        self.cost_fn, self.cost_name = cost_fn, cost_name
        self.entries: list[LedgerEntry] = []
        self.hooks: list[Callable[[LedgerEntry], None]] = []

    def cost(self, shape: ModelShape | None, kind: str, prompt: int, completion: int, n: int) -> float:
        return 0.0 if shape is None else float(self.cost_fn(shape, kind, prompt, completion, n))

    def record(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)
        for hook in self.hooks:
            hook(entry)

    def totals(self, problem_id: str | None = None) -> Totals:
        t = Totals()
        for e in self.entries:
            if problem_id is None or e.problem_id == problem_id:
                t.add(e)
        return t

    def by_role(self, problem_id: str | None = None) -> dict[str, Totals]:
        out: dict[str, Totals] = defaultdict(Totals)
        for e in self.entries:
            if problem_id is None or e.problem_id == problem_id:
                out[e.role].add(e)
        return dict(out)

    def forget(self, problem_id: str) -> None:
        """Drop a finished problem's entries once its record holds them (keeps memory flat)."""
        self.entries = [e for e in self.entries if e.problem_id != problem_id]
