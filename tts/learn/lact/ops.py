"""LaCT's functional core (spec lact.md; Zhang et al., arXiv 2505.23884): a per-head SwiGLU "fast
weight" memory f_W(u) = W1 (silu(W0 u) ⊙ (W2 u)) written once per large chunk by one step on the
dot-product loss −Σ η_i ⟨f_W(k_i), v_i⟩ (closed-form gradient), optionally through momentum and
Muon (Newton–Schulz), with every row rescaled to its initial norm; apply-then-update, so a chunk
reads only what earlier chunks wrote. Shapes: W0, W2 [BH, dh, d], W1 [BH, d, dh]; q, k, v [BH, L, d];
learning rates and momentum [BH, L, 1]. The streaming state (a buffered partial chunk) is our
design: the reference has no incremental decoding."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

NS_COEFFS = ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037),
             (2.8769, -3.1427, 1.2046), (2.8366, -3.0525, 1.2012))

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def fast_forward(w: Weights, u: torch.Tensor) -> torch.Tensor:
    """f_W(u) = W1 (silu(W0 u) ⊙ (W2 u)), batched over the leading dimension."""
    w0, w1, w2 = w
    return (F.silu(u @ w0.transpose(1, 2)) * (u @ w2.transpose(1, 2))) @ w1.transpose(1, 2)


def silu_grad(a: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(a)
    return s * (1 + a * (1 - s))


def write_update(w: Weights, k: torch.Tensor, v: torch.Tensor, lr0: torch.Tensor, lr1: torch.Tensor,
                 lr2: torch.Tensor) -> Weights:
    """(ΔW0, ΔW1, ΔW2) = −∂/∂W of −Σ_i η_{j,i} ⟨f_W(k_i), v_i⟩ (η_j scales W_j's gradient only)."""
    w0, w1, w2 = w
    a, b = k @ w0.transpose(1, 2), k @ w2.transpose(1, 2)
    h = F.silu(a) * b
    e = v @ w1  # e_i = W1ᵀ v_i
    d1 = (v * lr1).transpose(1, 2) @ h
    d2 = (e * F.silu(a) * lr2).transpose(1, 2) @ k
    d0 = (e * b * silu_grad(a) * lr0).transpose(1, 2) @ k
    return d0, d1, d2


def newton_schulz(g: torch.Tensor, steps: int = 5, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Muon's orthogonalisation: 5 quintic iterations with the reference's per-step coefficients
    (bf16 on GPUs, float32 on CPUs — float64 stays float64, for exact checks); output in the input's dtype."""
    if dtype is None:
        dtype = torch.bfloat16 if g.is_cuda else (torch.float64 if g.dtype == torch.float64 else torch.float32)
    x = g.to(dtype)
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = x.transpose(-2, -1)
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for a, b, c in NS_COEFFS[:steps]:
        s = x @ x.transpose(-2, -1)
        x = a * x + (b * s + c * s @ s) @ x
    if tall:
        x = x.transpose(-2, -1)
    return x.to(g.dtype)


def row_norms(w: Weights) -> Weights:
    """Each matrix's row norms (over its input dimension), kept as the targets of weight norm."""
    return tuple(m.norm(dim=-1, keepdim=True) for m in w)  # type: ignore[return-value]


def renormalise(m: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    return m / (m.norm(dim=-1, keepdim=True) + 1e-5) * norms


@dataclass(frozen=True)
class UpdateRule:
    """How a chunk's write is turned into new weights."""

    use_momentum: bool = True
    use_muon: bool = False
    weight_norm: bool = True


def step(w: Weights, mom: Weights | None, norms: Weights, k: torch.Tensor, v: torch.Tensor,
         lrs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], beta: torch.Tensor | None,
         rule: UpdateRule) -> tuple[Weights, Weights | None]:
    """One chunk's update: Δ → momentum (β = the chunk's mean) → Muon → add → row norms."""
    delta = write_update(w, k, v, *lrs)
    if rule.use_momentum and beta is not None:
        b = beta.mean(dim=1, keepdim=True)
        mom = tuple(dj + b * mj for dj, mj in zip(delta, mom)) if mom is not None else delta
        delta = mom
    if rule.use_muon:
        delta = tuple(newton_schulz(dj) for dj in delta)
    new = tuple(wj + dj for wj, dj in zip(w, delta))
    if rule.weight_norm:
        new = tuple(renormalise(wj, nj) for wj, nj in zip(new, norms))
    return new, mom  # type: ignore[return-value]


def lact_update_apply(w: Weights, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lr0: torch.Tensor,
                      lr1: torch.Tensor, lr2: torch.Tensor, momentum: torch.Tensor | None = None,
                      chunk_size: int = 2048, rule: UpdateRule = UpdateRule()) -> torch.Tensor:
    """Whole-sequence form: for each chunk, apply the current weights to its queries, then (unless
    it is the last chunk) write the chunk. A sequence of exactly k·C tokens makes k − 1 updates."""
    norms, mom = row_norms(w), None
    out = []
    length = q.shape[1]
    for s in range(0, length, chunk_size):
        e = min(s + chunk_size, length)
        out.append(fast_forward(w, q[:, s:e]))
        if e < length:
            beta = momentum[:, s:e] if momentum is not None else None
            w, mom = step(w, mom, norms, k[:, s:e], v[:, s:e], (lr0[:, s:e], lr1[:, s:e], lr2[:, s:e]), beta, rule)
    return torch.cat(out, dim=1)


@dataclass
class FastWeightState:
    """Streaming state of one layer's memory: current weights, momentum, initial row norms, and the
    buffered k/v/lr/β of the chunk not yet complete (its update fires when it reaches C tokens)."""

    w: Weights
    norms: Weights
    chunk_size: int
    rule: UpdateRule
    mom: Weights | None = None
    buffer: list[tuple[torch.Tensor, ...]] = field(default_factory=list)
    buffered: int = 0

    @classmethod
    def start(cls, w: Weights, chunk_size: int, rule: UpdateRule) -> "FastWeightState":
        return cls(w, row_norms(w), chunk_size, rule)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lrs: tuple[torch.Tensor, ...],
                 beta: torch.Tensor | None) -> torch.Tensor:
        """Outputs for L new tokens, updating the weights at every completed chunk."""
        out, s, length = [], 0, q.shape[1]
        while s < length:
            e = min(length, s + self.chunk_size - self.buffered)
            out.append(fast_forward(self.w, q[:, s:e]))
            parts = (k[:, s:e], v[:, s:e], *(x[:, s:e] for x in lrs)) + ((beta[:, s:e],) if beta is not None else ())
            self.buffer.append(parts)
            self.buffered += e - s
            if self.buffered == self.chunk_size:
                cat = [torch.cat(col, dim=1) for col in zip(*self.buffer)]
                b = cat[5] if beta is not None else None
                self.w, self.mom = step(self.w, self.mom, self.norms, cat[0], cat[1], tuple(cat[2:5]), b, self.rule)
                self.buffer, self.buffered = [], 0
            s = e
        return torch.cat(out, dim=1)


__all__ = ["FastWeightState", "UpdateRule", "fast_forward", "lact_update_apply", "newton_schulz", "row_norms",
           "step", "write_update"]
