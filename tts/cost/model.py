"""Cost models for the ledger: what one backend call costs, in (e)FLOPs, from the model's shape and
the call's token counts. `kinetics` (the default) follows specs/kinetics.md for decoding and adds
our own, labelled extensions for prefills, learning steps and recurrent models; `dense-2PT` is the
plain 2·P·T baseline the Kinetics paper argues against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tts.cost.kinetics import (INTENSITY, Cost, KineticsShape, block_topk_cost, dense_cost,
                               sparse_cost)
from tts.cost.shape import ModelShape

KINDS = ("generate", "stream", "score", "learn")
ATTENTION = ("dense", "topk", "local", "block_topk")
# Extension: state-update FLOPs per state element per token of a recurrent model (decay, rank-1
# write, read-out ≈ 2 FLOPs each), and state elements moved per token (read + write).
STATE_FLOPS_PER_ELEMENT = 6
STATE_TRAFFIC_PER_ELEMENT = 2
# Extension: a test-time learning step ≈ forward + backward ≈ 3 forward passes over its tokens.
LEARN_FORWARD_PASSES = 3


@dataclass(frozen=True)
class Usage:
    """Token counts of one call: uncached and cached prompt tokens and each sample's length."""

    kind: str
    prompt_tokens: int
    cached_tokens: int = 0
    lengths: tuple[int, ...] = ()
    n: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"call kind must be one of {', '.join(KINDS)}, got '{self.kind}'")

    @property
    def completion_tokens(self) -> int:
        return sum(self.lengths)

    @classmethod
    def even(cls, kind: str, prompt: int, completion: int, n: int, cached: int = 0) -> "Usage":
        """Usage when only the total completion tokens are known: spread evenly over n samples."""
        n = max(n, 1)
        base, extra = divmod(completion, n)
        return cls(kind, prompt, cached, tuple(base + (i < extra) for i in range(n)), n)


class CostModel:
    """Prices a call; `name` appears in every summary so numbers are never read without it."""

    name = "cost"

    def __call__(self, shape: ModelShape, usage: Usage) -> float:
        raise NotImplementedError

    def expected(self, shape: ModelShape, prompt_tokens: int, lengths: list[int], n: int) -> float:
        """Expected cost of N samples whose lengths follow `lengths` (sweeps and the planner)."""
        raise NotImplementedError


class Dense2PT(CostModel):
    """2 · active parameters · tokens processed; no attention or memory term."""

    name = "dense-2PT"

    def __init__(self) -> None:
        pass

    def __call__(self, shape: ModelShape, usage: Usage) -> float:
        return 2.0 * shape.active_params * (usage.prompt_tokens + usage.completion_tokens)

    def expected(self, shape: ModelShape, prompt_tokens: int, lengths: list[int], n: int) -> float:
        """2·P·(prompt + N·E[L]): N samples of the observed lengths after one prompt."""
        return 2.0 * shape.active_params * (prompt_tokens + n * sum(lengths) / len(lengths))


def intensity_for(hardware: str | float) -> float:
    """FLOPs per KV element for a named hardware profile, or a number given directly."""
    if isinstance(hardware, (int, float)):
        if hardware <= 0:
            raise ValueError("arithmetic intensity must be positive")
        return float(hardware)
    if hardware not in INTENSITY:
        raise ValueError(f"unknown hardware profile '{hardware}' (known: {', '.join(INTENSITY)}, "
                         f"or give the intensity as a number)")
    return INTENSITY[hardware]


@dataclass
class KineticsCost(CostModel):
    """eFLOPs = compute + I · KV-memory traffic (Kinetics Eq. 3) per call.

    Decoding follows the spec: N samples sharing one prompt, the expectation over each sample's
    real length (E[L²], not E[L]²), dense or sparse attention. Our extensions (not in the paper):
    the uncached prompt is costed as a prefill, prefill-only calls (`score`: judges, PRMs) as
    prefills alone, `learn` calls as 3 forward passes, and recurrent models (RWKV-7, LaCT; shape
    `state_size` > 0) with a constant-size state term in place of the KV term."""

    hardware: str | float = "B200"
    attention: str = "dense"
    kv_budget: int = 1024
    block_size: int | None = None
    intensity: float = field(init=False)

    def __post_init__(self) -> None:
        self.intensity = intensity_for(self.hardware)
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION)}, got '{self.attention}'")
        if self.kv_budget < 1:
            raise ValueError("kv_budget must be >= 1")

    @property
    def name(self) -> str:  # type: ignore[override]
        hw = self.hardware if isinstance(self.hardware, str) else f"I={self.intensity:g}"
        sparse = "" if self.attention == "dense" else f", {self.attention} B={self.kv_budget}"
        return f"kinetics({hw}{sparse})"

    def __call__(self, shape: ModelShape, usage: Usage) -> float:
        return self.breakdown(shape, usage).eflops

    def breakdown(self, shape: ModelShape, usage: Usage) -> Cost:
        """Compute and memory of the call, before they are combined into eFLOPs."""
        m = KineticsShape.from_model_shape(shape)
        prefill = self._prefill(m, shape.state_size, usage.cached_tokens, usage.prompt_tokens)
        if usage.kind == "learn":
            return _scale(prefill, LEARN_FORWARD_PASSES)
        if usage.kind == "score" or not usage.lengths:
            return prefill
        decode = self._decode(m, shape.state_size, usage.cached_tokens + usage.prompt_tokens, usage)
        return Cost(prefill.comp + decode.comp, prefill.mem + decode.mem, self.intensity)

    def expected(self, shape: ModelShape, prompt_tokens: int, lengths: list[int], n: int) -> float:
        """Expected eFLOPs of N samples whose lengths follow the observed `lengths` (Eq. 10: the
        decode cost uses E[L] and E[L²] of the sample), plus one prefill of the prompt."""
        if not lengths:
            raise ValueError("need at least one observed length")
        m = KineticsShape.from_model_shape(shape)
        prefill = self._prefill(m, shape.state_size, 0, prompt_tokens)
        if shape.state_size or self.attention != "dense":
            per = [self._decode(m, shape.state_size, prompt_tokens, Usage("generate", 0, 0, (x,), 1))
                   for x in lengths]
            mean = Cost(sum(c.comp for c in per) / len(per), sum(c.mem for c in per) / len(per), self.intensity)
            return prefill.eflops + n * mean.eflops
        return prefill.eflops + dense_cost(m, prompt_tokens, lengths, n, self.intensity).eflops

    def _prefill(self, m: KineticsShape, state: int, cached: int, new: int) -> Cost:
        """Extension: new tokens attend to the cached prefix and to each other (causal); the KV of
        the context is read once (prefill is compute-bound). Recurrent: one state pass."""
        if state:
            comp = 2 * m.params * new + STATE_FLOPS_PER_ELEMENT * state * new
            return Cost(comp, STATE_TRAFFIC_PER_ELEMENT * state if new else 0, self.intensity)
        comp = 2 * m.params * new + 2 * m.r * m.D * cached * new + m.r * m.D * new * (new + 1)
        return Cost(comp, m.D * (cached + new) if new else 0, self.intensity)

    def _decode(self, m: KineticsShape, state: int, l_in: int, usage: Usage) -> Cost:
        if state:
            tokens = usage.completion_tokens
            comp = 2 * m.params * tokens + STATE_FLOPS_PER_ELEMENT * state * tokens
            return Cost(comp, STATE_TRAFFIC_PER_ELEMENT * state * tokens, self.intensity)
        if self.attention == "dense":
            return dense_cost(m, l_in, list(usage.lengths), len(usage.lengths), self.intensity)
        one = _SPARSE[self.attention]
        parts = [one(self, m, l_in, length) for length in usage.lengths]
        return Cost(sum(p.comp for p in parts), sum(p.mem for p in parts), self.intensity)


def _scale(c: Cost, k: float) -> Cost:
    return Cost(c.comp * k, c.mem * k, c.intensity)


_SPARSE: dict[str, Callable[[KineticsCost, KineticsShape, int, int], Cost]] = {
    "topk": lambda s, m, l_in, l: sparse_cost(m, l_in, l, 1, s.kv_budget, s.intensity),
    "local": lambda s, m, l_in, l: sparse_cost(m, l_in, l, 1, s.kv_budget, s.intensity),
    "block_topk": lambda s, m, l_in, l: block_topk_cost(m, l_in, l, 1, s.kv_budget, s.block_size,
                                                        s.intensity),
}
