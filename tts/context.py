"""The strategy context: what a strategy may use for one problem — roles (with budget, seeds and
ledger applied to every call), selectors, an extractor, an rng and a logger. Never the grader."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from tts.budget import Budget, BudgetExhausted, Reservation
from tts.cost.model import Usage
from tts.ledger import Ledger, LedgerEntry
from tts.roles import Role
from tts.seeds import call_path, derive_seed
from tts.types import Candidate, Generation, Problem, RequestState, Sampling, StreamDelta


_EXTRACT: Any = object()  # `candidate(answer=...)` default: extract the answer from the text


def logprob_stats(logprobs: list[float] | None, tail: int = 32) -> dict[str, float]:
    """Mean, minimum, sum and tail-mean token log-probability of one sample."""
    if not logprobs:
        return {}
    finite = [x if math.isfinite(x) else -1e4 for x in logprobs]
    end = finite[-tail:]
    return {"mean": sum(finite) / len(finite), "min": min(finite), "sum": sum(finite),
            "tail_mean": sum(end) / len(end), "count": float(len(finite))}


class StrategyContext:
    """Per-problem handle a strategy works through."""

    def __init__(self, problem: Problem, roles: dict[str, Role], ledger: Ledger, budget: Budget,
                 run_seed: int = 0, selectors: dict[str, Any] | None = None,
                 extractor: Any = None, logger: logging.Logger | None = None) -> None:
        self.problem, self.roles, self.ledger, self.budget = problem, roles, ledger, budget
        self.run_seed = run_seed
        self.selectors = selectors or {}
        self.extractor = extractor
        self.log = logger or logging.getLogger("tts.strategy")
        self.rng = random.Random(derive_seed(run_seed, problem.id, "rng"))
        self._calls: dict[str, int] = {}
        self.paid: list[Candidate] = []  # every candidate made so far, in order: what the budget paid for

    def role(self, name: str) -> "BoundRole":
        if name not in self.roles:
            raise KeyError(f"role '{name}' is not defined in the recipe (roles: {', '.join(self.roles)})")
        return BoundRole(self, self.roles[name])

    def seed(self, call_path: str) -> int:
        """Base seed of a call; sample i of it uses this + i."""
        return derive_seed(self.run_seed, self.problem.id, call_path)

    def next_call_path(self, prefix: str) -> str:
        """`prefix/k` for the k-th call with this prefix in program order."""
        k = self._calls.get(prefix, 0)
        self._calls[prefix] = k + 1
        return call_path(prefix, k)

    call = staticmethod(call_path)  # `ctx.call("think", i, round)`: the one way to name a call

    def extract(self, text: str) -> str | None:
        return self.extractor.extract(text) if self.extractor is not None else None

    def candidates(self, gen: Generation, role: str, start: int = 0, iid: bool = True,
                   also: list[tuple[str, ...]] | None = None,
                   meta: list[dict[str, Any]] | None = None) -> list[Candidate]:
        """Candidates from a generation's completions (one call, n samples), answers extracted here;
        each priced as its own sample of the call (the shared prompt as cached), plus the ledger
        entries of `also[i]`: calls completion i alone paid for (its own learning steps)."""
        shape = self.roles[role].backend.shape
        return [self.candidate(role, start + i, comp.token_ids, comp.text, seed=comp.seed, logprobs=comp.logprobs,
                               finish_reason=comp.finish_reason, prompt_tokens=gen.prompt_tokens, iid=iid,
                               eflops=self.ledger.cost(shape, Usage("generate", 0, gen.prompt_tokens,
                                                                    (len(comp.token_ids),)))
                               + (self.paid_for(also[i]) if also else 0.0),
                               meta=meta[i] if meta else None)
                for i, comp in enumerate(gen.completions)]

    def paid_for(self, calls: tuple[str, ...] = (), prefix: str | None = None) -> float:
        """eFLOPs of this problem's ledger entries for `calls` (or every call under `prefix/`)."""
        wanted = set(calls)
        return sum(e.eflops for e in self.ledger.problem_entries(self.problem.id)
                   if e.call in wanted or (prefix is not None and e.call.startswith(prefix + "/")))

    def candidate(self, role: str, index: int, token_ids: list[int], text: str, *, calls: tuple[str, ...] = (),
                  call_prefix: str | None = None, eflops: float | None = None, answer: Any = _EXTRACT, seed: int | None = None,
                  logprobs: list[float] | None = None, finish_reason: str | None = None, prompt_tokens: int = 0,
                  completion_tokens: int | None = None, iid: bool = True,
                  meta: dict[str, Any] | None = None) -> Candidate:
        """The one way a strategy makes a candidate: answer extracted from `text` unless given, eFLOPs
        the sum of this problem's ledger entries for `calls` (the call paths that built it) unless
        given (or of every call under `call_prefix`: `atts/s3` covers `atts/s3/t0/draft`, ...), and
        kept in `paid` so a budget stop can still aggregate it."""
        if eflops is None:
            eflops = self.paid_for(calls, call_prefix)
        cand = Candidate(problem_id=self.problem.id, index=index, role=role, seed=seed, token_ids=list(token_ids),
                         text=text, answer=self.extract(text) if answer is _EXTRACT else answer,
                         logprob_stats=logprob_stats(logprobs), logprobs=logprobs, finish_reason=finish_reason,
                         prompt_tokens=prompt_tokens,
                         completion_tokens=len(token_ids) if completion_tokens is None else completion_tokens,
                         iid=iid, eflops=eflops, meta=meta or {})
        self.paid.append(cand)
        return cand

    async def score_candidates(self, candidates: list[Candidate]) -> None:
        """Run every recipe selector over the candidates it has not scored yet (a generator may
        score as it goes, e.g. for a stopping rule); scores land in `candidate.scores`."""
        for name, selector in self.selectors.items():
            todo = [c for c in candidates if name not in c.scores]
            if not todo:
                continue
            values = await selector.score(self.problem, todo, self)
            for cand, value in zip(todo, values):
                cand.scores[name] = float(value)

    # -- budget ------------------------------------------------------------------------------
    def _amount(self, role: Role, usage: Usage) -> float:
        unit = self.budget.unit
        if unit == "samples":
            return float(usage.n if usage.kind in ("generate", "stream") else 0)
        if unit == "tokens":
            return float(usage.prompt_tokens + usage.completion_tokens)
        return self.ledger.cost(role.backend.shape, usage)

    def affordable_n(self, role: str, prompt_tokens: int, sampling: Sampling) -> int:
        """How many samples of this call the budget can still cover (0 if none)."""
        r = self.roles[role]
        for n in range(sampling.n, 0, -1):
            worst = Usage("generate", prompt_tokens, 0, (sampling.max_tokens,) * n, n)
            if self._amount(r, worst) <= self.budget.remaining:
                return n
        return 0

    def _reserve(self, role: Role, usage: Usage) -> Reservation:
        """Hold the call's worst case (every sample runs to max tokens, nothing cached)."""
        return self.budget.reserve(self._amount(role, usage))

    def _charge(self, res: Reservation, role: Role, entry: LedgerEntry, usage: Usage) -> None:
        entry.eflops = self.ledger.cost(role.backend.shape, usage)
        self.ledger.record(entry)
        self.budget.settle(res, self._amount(role, usage))


class BoundRole:
    """A role as a strategy sees it: every call seeded, reserved against the budget and ledgered."""

    def __init__(self, ctx: StrategyContext, role: Role) -> None:
        self.ctx, self.role, self.name = ctx, role, role.name

    def __getattr__(self, item: str) -> Any:  # render, encode, decode, tokenizer, sampling ...
        return getattr(self.role, item)

    def prompt(self, assistant_prefix: str | None = None) -> list[int]:
        """The recipe prompt for the current problem, rendered for this role."""
        return self.role.render_problem(self.ctx.problem.problem, assistant_prefix)

    def sampling(self, **overrides: Any) -> Sampling:
        return self.role.sampling.replace(**overrides) if overrides else self.role.sampling

    def _seeded(self, sampling: Sampling | None, call: str | None, kind: str) -> tuple[Sampling, str]:
        """The call's sampling with its seed, and its call path (one naming rule for every call)."""
        s = sampling or self.role.sampling
        path = call or self.ctx.next_call_path(f"{self.name}:{kind}")
        return (s.replace(seed=self.ctx.seed(path)) if s.seed is None else s), path

    async def generate(self, prompt_ids: list[int], sampling: Sampling | None = None,
                       call: str | None = None, fit_budget: bool = False,
                       state: RequestState | None = None) -> Generation:
        """Sample with seeds derived from (run, problem, call path); budget and ledger applied.
        `fit_budget`: ask for as many of the n samples as the budget can cover (at least one, else
        BudgetExhausted), sized and reserved in one step so no other call takes the room between.
        `state`: per-request model state (the backend must declare `request_state`)."""
        backend = self.role.backend
        if state is not None:
            backend.capabilities.require(f"{backend.name} (role '{self.name}')", request_state=True)
        s, path = self._seeded(sampling, call, "generate")
        if fit_budget:
            fits = self.ctx.affordable_n(self.name, len(prompt_ids), s)
            if fits == 0:
                raise BudgetExhausted(f"budget cannot cover one sample of problem {self.ctx.problem.id}")
            s = s.replace(n=fits)
        res = self.ctx._reserve(self.role, _worst("generate", prompt_ids, s))
        try:
            gen = await (backend.generate(prompt_ids, s) if state is None
                         else backend.generate_with_state(prompt_ids, s, state))
        except BaseException:
            self.ctx.budget.settle(res, 0.0)
            raise
        entry = LedgerEntry(self.ctx.problem.id, self.name, "generate", s.n,
                            gen.prompt_tokens - gen.cached_prompt_tokens, gen.cached_prompt_tokens,
                            gen.completion_tokens, gen.seconds,
                            spec_accepted_tokens=gen.info.get("spec_accepted_tokens", 0),
                            spec_draft_tokens=gen.info.get("spec_draft_tokens", 0), call=path)
        usage = Usage("generate", entry.prompt_tokens, entry.cached_tokens,
                      tuple(len(c.token_ids) for c in gen.completions), s.n)
        self.ctx._charge(res, self.role, entry, usage)
        return gen

    async def stream(self, prompt_ids: list[int], sampling: Sampling | None = None,
                     call: str | None = None) -> AsyncIterator[StreamDelta]:
        """Stream deltas; closing the iterator aborts the request and charges what was produced."""
        s, path = self._seeded(sampling, call, "stream")
        res = self.ctx._reserve(self.role, _worst("stream", prompt_ids, s))
        produced, t0 = 0, time.perf_counter()
        agen = self.role.backend.stream(prompt_ids, s)
        try:
            async for delta in agen:
                produced += len(delta.token_ids)
                yield delta
        finally:
            await agen.aclose()
            entry = LedgerEntry(self.ctx.problem.id, self.name, "stream", s.n, len(prompt_ids), 0,
                                produced, time.perf_counter() - t0, call=path)
            self.ctx._charge(res, self.role, entry, Usage.even("stream", len(prompt_ids), produced, s.n))

    async def score(self, prompt_ids: list[int], continuation_ids: list[int], call: str = "") -> list[float]:
        """Log-probs of the continuation (prefill only, costed as a prefill of both spans); `call`
        names the entry for `ctx.candidate`."""
        total = len(prompt_ids) + len(continuation_ids)
        usage = Usage("score", total)
        res = self.ctx._reserve(self.role, usage)
        t0 = time.perf_counter()
        try:
            values = await self.role.backend.score(prompt_ids, continuation_ids)
        except BaseException:
            self.ctx.budget.settle(res, 0.0)
            raise
        self.ctx._charge(res, self.role, LedgerEntry(self.ctx.problem.id, self.name, "score", 1, total,
                                                      0, 0, time.perf_counter() - t0, call=call), usage)
        return values


    async def classify(self, prompt_ids: list[int], call: str = "") -> list[Any]:
        """A reward head's raw outputs (the role's backend must declare `classify`), costed as a
        prefill of the input and ledgered under this role like any other call."""
        backend = self.role.backend
        backend.capabilities.require(f"{backend.name} (role '{self.name}')", classify=True)
        usage = Usage("score", len(prompt_ids))
        res = self.ctx._reserve(self.role, usage)
        t0 = time.perf_counter()
        try:
            out = await backend.classify(prompt_ids)
        except BaseException:
            self.ctx.budget.settle(res, 0.0)
            raise
        entry = LedgerEntry(self.ctx.problem.id, self.name, "score", 1, len(prompt_ids), 0, 0,
                            time.perf_counter() - t0, call=call)
        self.ctx._charge(res, self.role, entry, usage)
        return out

    def account(self, usage: Usage, seconds: float, call: str = "") -> None:
        """Charge work done directly on this role's model (a test-time learning step, decoding
        under a lease) to the budget and the ledger, like any other call of the role; `call` names
        it for `ctx.candidate(calls=...)`."""
        res = self.ctx._reserve(self.role, usage)
        entry = LedgerEntry(self.ctx.problem.id, self.name, usage.kind, usage.n, usage.prompt_tokens,
                            usage.cached_tokens, usage.completion_tokens, seconds, call=call)
        self.ctx._charge(res, self.role, entry, usage)


def _worst(kind: str, prompt_ids: list[int], s: Sampling) -> Usage:
    return Usage(kind, len(prompt_ids), 0, (s.max_tokens,) * s.n, s.n)
