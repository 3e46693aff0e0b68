"""Test-time MoE rerouting (spec: moe-rerouting.md; the loop, layer rule, defaults and cache
handling are our reconstruction): router offsets δ on a few confident MoE layers are fitted by
Adam on the next-token loss of the text so far — the prompt at prefill, then prompt + generated
text every `interval` tokens — and generation continues with the new routing; after each
re-optimisation the KV cache is rebuilt under the final δ (`rebuild_cache: false` keeps the stale
cache, a cheaper approximation). Decoding is the backend's: `RerouteState` is a `RequestState`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from tts.learn.moe import RouterBias, layer_confidence, moe_blocks
from tts.types import RequestState


@dataclass(frozen=True)
class RerouteSettings:
    n_layers: int = 4
    layers: tuple[int, ...] | None = None  # fixed layers instead of the confidence rule
    steps_prefill: int = 10
    steps_reopt: int = 5
    lr: float = 5e-2
    interval: int = 128
    layer_metric: str = "topk_mass"
    max_opt_tokens: int = 4096
    l2: float = 0.0
    rebuild_cache: bool = True
    validate: tuple[int, ...] | None = None  # choose the prefill step count from this grid by CV


@dataclass
class Trace:
    layers: list[int] = field(default_factory=list)
    losses: list[tuple[int, int, float]] = field(default_factory=list)  # (position, step, loss)
    reopt_at: list[int] = field(default_factory=list)
    delta_norm: list[float] = field(default_factory=list)
    learn_tokens: list[int] = field(default_factory=list)  # tokens of each optimiser step
    seconds_learning: float = 0.0
    prefill_steps: int | None = None


def lm_loss(model: Any, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy, computed here (HF's `loss` would add the MoE aux loss)."""
    logits = _upcast(model(input_ids=ids).logits[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def heldout_loss(model: Any, ids: torch.Tensor, cut: int) -> float:
    """Cross-entropy of tokens cut.. given everything before them (no gradient)."""
    with torch.no_grad():
        logits = _upcast(model(input_ids=ids).logits[:, cut - 1:-1])
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, cut:].reshape(-1)))


def fit_offsets(model: Any, bias: RouterBias, ids: torch.Tensor, steps: int, lr: float, l2: float = 0.0,
                optimiser: torch.optim.Optimizer | None = None, trace: Trace | None = None,
                position: int = 0, watch: Any = None) -> torch.optim.Optimizer:
    """`steps` Adam steps on δ only (the model is frozen and in eval mode: no dropout, no jitter).
    `watch(step)` is called before each step and after the last (validation curves)."""
    opt = optimiser or torch.optim.Adam(bias.parameters(), lr=lr, betas=(0.9, 0.999))
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    t0 = time.perf_counter()
    try:
        for step in range(steps):
            if watch is not None:
                watch(step)
            opt.zero_grad()
            loss = lm_loss(model, ids)
            if l2:
                loss = loss + l2 * sum((d ** 2).sum() for d in bias.parameters())
            loss.backward()
            opt.step()
            if trace is not None:
                trace.losses.append((position, step, float(loss.detach())))
                trace.learn_tokens.append(int(ids.numel()))
        if watch is not None:
            watch(steps)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    if trace is not None:
        trace.seconds_learning += time.perf_counter() - t0
        trace.delta_norm.append(float(sum(d.detach().norm() ** 2 for d in bias.parameters()) ** 0.5))
    return opt


def validated_steps(model: Any, layers: list[int] | None, ids: torch.Tensor, grid: tuple[int, ...], lr: float,
                    l2: float = 0.0, trace: Trace | None = None) -> int:
    """How many steps to take, by two-fold cross-validation on the text itself: fit on one half,
    score the other (each way), keep the grid value with the lowest total held-out loss — 0 when
    fitting does not generalise. Our extension against over-adaptation (the spec's pitfall): on
    text without a routing shift it leaves δ at zero."""
    half = ids.shape[1] // 2
    total = dict.fromkeys(grid, 0.0)
    for fit_ids, eval_ids, cut in ((ids[:, :half], ids, half), (ids[:, half:], ids[:, :half], 1)):
        bias = RouterBias(model, layers).to(ids.device)

        def watch(step: int, eval_ids: torch.Tensor = eval_ids, cut: int = cut) -> None:
            if step in total:
                total[step] += heldout_loss(model, eval_ids, cut)

        with bias:
            fit_offsets(model, bias, fit_ids, max(grid), lr, l2, trace=trace, watch=watch)
    return min(grid, key=lambda s: (total[s], s))


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (half-precision logits), float64 kept (gradient checks)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _snapshot(bias: RouterBias) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in bias.delta.items()}


class RerouteState(RequestState):
    """Router adaptation as per-request model state (`request_state`): the backend decodes each row
    with its own sampler and seeding, and this fits δ on the prompt before the row's prefill, refits
    it on the text so far every `interval` tokens (asking for the cache to be rebuilt under the new
    δ unless `rebuild_cache` is off), and removes δ when the row ends. One `Trace` per row; the last
    δ of each row in `deltas`; `rebuilt[i]`: tokens row i re-prefilled (its own prompt prefill after
    the first row, and every cache rebuild), compute the generate call's ledger entry does not hold."""

    shared_prefill = False  # each row fits its own δ before its prefill

    def __init__(self, settings: RerouteSettings | None = None) -> None:
        self.s = settings or RerouteSettings()
        self.traces: list[Trace] = []
        self.deltas: list[dict[str, torch.Tensor]] = []
        self.rebuilt: list[int] = []
        self._bias: RouterBias | None = None
        self._opt: torch.optim.Optimizer | None = None
        self._prompt = 0

    def select_layers(self, model: Any, ids: torch.Tensor) -> list[int]:
        if self.s.layers is not None:
            return list(self.s.layers)
        conf = layer_confidence(model, ids, self.s.layer_metric)
        return sorted(sorted(conf, key=lambda k: -conf[k])[: self.s.n_layers])

    def begin_row(self, model: Any, prompt_ids: list[int], row: int) -> None:
        if not moe_blocks(model):
            raise ValueError(f"{type(model).__name__} is not a Mixture-of-Experts model this patch knows")
        model.eval()
        seq = torch.tensor([prompt_ids], device=next(model.parameters()).device)
        trace = Trace()
        self.traces.append(trace)
        self.rebuilt.append(len(prompt_ids) if row else 0)
        self._prompt = len(prompt_ids)
        with torch.enable_grad():
            trace.layers = self.select_layers(model, seq)
            self._bias = RouterBias(model, trace.layers).to(seq.device).install()
            steps = self.s.steps_prefill
            if self.s.validate:
                steps = validated_steps(model, trace.layers, seq, self.s.validate, self.s.lr, self.s.l2, trace)
                trace.prefill_steps = steps
            self._opt = fit_offsets(model, self._bias, seq, steps, self.s.lr, self.s.l2, trace=trace)

    def after_token(self, model: Any, ids: list[int], row: int) -> bool:
        if (len(ids) - self._prompt) % self.s.interval or self.s.steps_reopt == 0:
            return False
        trace = self.traces[-1]
        trace.reopt_at.append(len(ids))
        window = torch.tensor([ids[-self.s.max_opt_tokens:]], device=next(model.parameters()).device)
        with torch.enable_grad():
            self._opt = fit_offsets(model, self._bias, window, self.s.steps_reopt, self.s.lr, self.s.l2, self._opt,
                                    trace, len(ids))
        if self.s.rebuild_cache:
            self.rebuilt[-1] += len(ids)
        return self.s.rebuild_cache

    def end_row(self, model: Any, row: int) -> None:
        if self._bias is not None:
            self._bias.remove()
            self.deltas.append(_snapshot(self._bias))
            self._bias, self._opt = None, None
        self.seconds = sum(t.seconds_learning for t in self.traces)
