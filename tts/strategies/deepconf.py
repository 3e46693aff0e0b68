"""DeepConf (Fu et al. 2025, "Deep Think with Confidence"), following its two modes:

- offline (`deepconf` aggregator): keep the traces whose lowest group confidence is in the top
  `keep` fraction, then vote (majority, or weighted by that confidence);
- online (`deepconf_online` generator): draw `warmup` full traces, fix the threshold at the
  (1 − keep) percentile of their lowest group confidences, then stream the rest and abort a trace as
  soon as a full window's confidence falls below it; aborted traces do not vote.

Confidence is the sampled tokens' log-probability (see tts.strategies.confidence for the deviation)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from tts.context import StrategyContext
from tts.strategies.aggregators import PureAggregator
from tts.strategies.base import Generator, StoppingRule
from tts.strategies.confidence import lowest_group_confidence, percentile
from tts.types import Candidate, Problem

log = logging.getLogger(__name__)


def abort_point(logprobs: list[float], window: int, threshold: float) -> int | None:
    """Tokens generated when a gated trace would be aborted: the first t ≥ window whose last window
    has mean log-prob below `threshold` (None: the trace runs to its end)."""
    if len(logprobs) < window:
        return None
    total = sum(logprobs[:window])
    for t in range(window, len(logprobs) + 1):
        if t > window:
            total += logprobs[t - 1] - logprobs[t - 1 - window]
        if total / window < threshold:
            return t
    return None


def warmup_threshold(warm: list[Candidate], keep: float, window: int) -> float:
    """The (1 − keep) percentile of the warm-up traces' lowest group confidences."""
    return percentile([lowest_group_confidence(c.logprobs, window) for c in warm], 100 * (1 - keep))


def _check_keep(keep: float) -> float:
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return keep


class DeepConfVote(PureAggregator):
    """Filter to the most confident traces (by lowest group confidence), then vote."""

    name = "deepconf"

    def __init__(self, keep: float = 0.1, window: int = 2048, weighted: bool = False) -> None:
        self.keep, self.window, self.weighted = _check_keep(keep), window, weighted

    def confidence(self, c: Candidate) -> float:
        if c.logprobs is None:
            raise ValueError("deepconf needs each candidate's token log-probabilities (sampling.logprobs: true); "
                             "records keep only summaries, so it cannot be replayed from a finished run")
        return lowest_group_confidence(c.logprobs, self.window)

    def kept(self, candidates: list[Candidate]) -> list[tuple[Candidate, float]]:
        scored = sorted(((c, self.confidence(c)) for c in candidates), key=lambda x: -x[1])
        return scored[: max(1, round(self.keep * len(scored)))]

    def tally(self, candidates: list[Candidate]) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for c, conf in self.kept(candidates):
            if c.answer is not None:
                out[c.answer] += (2.718281828459045 ** conf) if self.weighted else 1.0
        return dict(out)


class DeepConfOnline(Generator):
    """Warm-up, then confidence-gated streaming; an optional stopping rule ends sampling early."""

    name = "deepconf_online"
    iid = False  # later traces depend on the warm-up's threshold and may be cut short
    nested = {"stopping": "stopping_rules"}  # built by tts.components.build from the recipe field

    def __init__(self, role: str = "policy", warmup: int = 16, keep: float = 0.9, window: int = 2048,
                 round_size: int = 8, stopping: str | dict | StoppingRule | None = None) -> None:
        if warmup < 1 or round_size < 1:
            raise ValueError("warmup and round_size must be >= 1")
        if isinstance(stopping, (str, dict)):
            raise TypeError("stopping must be a built stopping rule (tts.components.build builds it from a recipe)")
        self.role, self.warmup, self.keep, self.window = role, warmup, _check_keep(keep), window
        self.round_size, self.stopping = round_size, stopping

    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        role = ctx.role(self.role)
        prompt = role.prompt()
        base = ctx.seed(f"{self.role}:sample")
        first = min(self.warmup, n)
        gen = await role.generate(prompt, role.sampling(n=first, seed=base, logprobs=True))
        out = ctx.candidates(gen, self.role, iid=False)
        threshold = warmup_threshold(out, self.keep, self.window)
        while len(out) < n and not (self.stopping and self.stopping.should_stop(problem, self._voters(out), ctx)):
            todo = range(len(out), min(n, len(out) + self.round_size))
            out += await asyncio.gather(*(self._gated(ctx, prompt, base + i, i, threshold) for i in todo))
        return out

    @staticmethod
    def _voters(cands: list[Candidate]) -> list[Candidate]:
        return [c for c in cands if not c.meta.get("aborted")]

    async def _gated(self, ctx: StrategyContext, prompt: list[int], seed: int, index: int,
                     threshold: float) -> Candidate:
        """Stream one trace; abort when the latest full window's mean log-prob drops below threshold."""
        role = ctx.role(self.role)
        ids: list[int] = []
        lps: list[float] = []
        window_sum = 0.0  # sum of the last `window` log-probs, kept as tokens arrive
        aborted, finish = False, "length"
        stream = role.stream(prompt, role.sampling(n=1, seed=seed, logprobs=True), call=ctx.call("deepconf", "trace", index))
        try:
            async for delta in stream:
                ids += delta.token_ids
                finish = delta.finish_reason or finish
                for lp in delta.logprobs or []:
                    lps.append(lp)
                    window_sum += lp - (lps[-1 - self.window] if len(lps) > self.window else 0.0)
                if len(lps) >= self.window and window_sum / self.window < threshold:
                    aborted = True
                    break
        finally:
            await stream.aclose()
        text = role.decode(ids)
        return ctx.candidate(self.role, index, ids, text, calls=(ctx.call("deepconf", "trace", index),), seed=seed,
                             answer=None if aborted else ctx.extract(text), logprobs=lps,
                             finish_reason="aborted" if aborted else finish, prompt_tokens=len(prompt),
                             iid=False, meta={"aborted": aborted})
