"""TTSPM, the test-time scaling performance model (Wang et al. 2025, "Scaling over Scaling",
arXiv 2505.20522), following specs/ttspm.md: F(N) = F_max · (1 − (1 − p)^N) for N parallel samples
or N rethinking rounds, its marginal gain, and the saturation point N* past which one more unit
adds less than ε.

Confirmed by the paper: the parallel and sequential forms and the unified curve's structure.
Reconstruction (ours, until checked against the paper's equations): the ceiling factor F_max, the
closed form of N*, the sequential form with a separate first-round accuracy, the dataset bound, the
estimators of p and the curve fit. Functions that are reconstructions say so."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def _check_p(p: float, f_max: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not 0.0 < f_max <= 1.0:
        raise ValueError(f"f_max must be in (0, 1], got {f_max}")


def ttspm_curve(n: float | Sequence[float], p: float, f_max: float = 1.0) -> float | list[float]:
    """F(N) = F_max · (1 − (1 − p)^N); vectorised over N."""
    _check_p(p, f_max)
    if isinstance(n, (int, float)):
        return f_max * (1.0 - (1.0 - p) ** n)
    return [f_max * (1.0 - (1.0 - p) ** k) for k in n]


def sequential_curve(n: float, p_rethink: float, a0: float) -> float:
    """Reconstruction: 1 − (1 − a0)(1 − p_y)^N when round 0 is right with probability a0."""
    _check_p(p_rethink, 1.0)
    return 1.0 - (1.0 - a0) * (1.0 - p_rethink) ** n


def marginal_gain(n: float, p: float, f_max: float = 1.0) -> float:
    """ΔF(N) = F(N+1) − F(N) = F_max · p · (1 − p)^N."""
    _check_p(p, f_max)
    return f_max * p * (1.0 - p) ** n


def saturation_point(p: float, eps: float, f_max: float = 1.0, mode: str = "discrete",
                     unit_cost: float = 1.0) -> float:
    """Reconstruction of the closed form: the smallest N ≥ 0 with ΔF(N) < ε (discrete), or where
    dF/dN falls to ε (continuous). With `unit_cost` c, ε is a gain per cost unit (ε' · c)."""
    _check_p(p, f_max)
    if eps <= 0:
        raise ValueError("eps must be positive")
    if mode not in ("discrete", "continuous"):
        raise ValueError("mode must be 'discrete' or 'continuous'")
    eps = eps * unit_cost
    if p == 0.0:
        return 0
    if p == 1.0:
        return 1 if eps <= f_max else 0
    if mode == "continuous":
        slope0 = -f_max * math.log1p(-p)
        return max(0.0, math.log(eps / slope0) / math.log1p(-p)) if eps < slope0 else 0.0
    if eps > f_max * p:
        return 0
    x = math.log(eps / (f_max * p)) / math.log1p(-p)
    n = max(0, math.floor(x) + 1)
    # guard the floating point at exact-integer x: step to the true smallest N with ΔF(N) < ε
    while n > 0 and marginal_gain(n - 1, p, f_max) < eps:
        n -= 1
    while marginal_gain(n, p, f_max) >= eps:
        n += 1
    return n


def estimate_p_parallel(correct: Sequence[bool | float]) -> float:
    """Reconstruction: p̂_x = fraction of i.i.d. samples counted correct (evals only: uses grades)."""
    if not correct:
        raise ValueError("need at least one sample")
    return sum(float(c) for c in correct) / len(correct)


def estimate_p_sequential(states: Sequence[Sequence[bool]]) -> float:
    """Reconstruction: geometric MLE over rollouts, #(s0 → s1) / #(rounds that started in s0).
    `states[r][t]` is whether round t of rollout r was correct (round 0 is the first answer)."""
    ups = starts = 0
    for rollout in states:
        for prev, cur in zip(rollout, rollout[1:]):
            if not prev:
                starts += 1
                ups += bool(cur)
    if starts == 0:
        raise ValueError("no round started from a wrong answer: p_rethink is not identifiable")
    return ups / starts


def relapse_rate(states: Sequence[Sequence[bool]]) -> float:
    """#(s1 → s0) / #(rounds that started in s1): how often a model talks itself out of a right
    answer, which the absorbing-state model assumes is zero (report it beside p_rethink)."""
    downs = starts = 0
    for rollout in states:
        for prev, cur in zip(rollout, rollout[1:]):
            if prev:
                starts += 1
                downs += not cur
    return downs / starts if starts else 0.0


def dataset_curve(ps: Sequence[float], n: int) -> float:
    """Acc(N) = mean over problems of 1 − (1 − p_q)^N (model each problem's p, then average)."""
    return sum(1.0 - (1.0 - p) ** n for p in ps) / len(ps)


def dataset_upper_bound(ps: Sequence[float], n: int) -> float:
    """Reconstruction: 1 − (1 − p̄)^N ≥ Acc(N) by Jensen — why one pooled p overstates Hit@N."""
    mean = sum(ps) / len(ps)
    return 1.0 - (1.0 - mean) ** n


@dataclass
class Fit:
    """A fitted curve and how well it fits; `misfit` is set when the RMSE exceeds the tolerance
    (e.g. a majority-vote curve, which is only approximately of this form)."""

    p: float
    f_max: float
    rmse: float
    residuals: list[float] = field(default_factory=list)
    misfit: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"p": self.p, "f_max": self.f_max, "rmse": self.rmse, "misfit": self.misfit,
                "residuals": self.residuals}


def _best_f_max(ns: Sequence[float], acc: Sequence[float], p: float) -> float:
    """For fixed p the curve is linear in F_max: least squares, clipped to (0, 1]."""
    g = [1.0 - (1.0 - p) ** k for k in ns]
    den = sum(x * x for x in g)
    return min(1.0, max(1e-9, sum(x * y for x, y in zip(g, acc)) / den)) if den else 1.0


def fit_ttspm(ns: Sequence[float], acc: Sequence[float], fix_f_max: float | None = None,
              tol: float = 0.02) -> Fit:
    """Reconstruction: least squares of F(N) on measured accuracy (0 < p < 1, 0 < F_max ≤ 1), by a
    logit grid over p refined by golden section; F_max in closed form for each p."""
    if len(ns) != len(acc) or len(ns) < 2:
        raise ValueError("need accuracies at two or more N, one per N")

    def sse(p: float) -> tuple[float, float]:
        f = fix_f_max if fix_f_max is not None else _best_f_max(ns, acc, p)
        return sum((f * (1 - (1 - p) ** k) - y) ** 2 for k, y in zip(ns, acc)), f

    grid = [1 / (1 + math.exp(-z / 20)) for z in range(-200, 201)]
    i = min(range(len(grid)), key=lambda j: sse(grid[j])[0])
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        lo, hi = (lo, b) if sse(a)[0] < sse(b)[0] else (a, hi)
    p = (lo + hi) / 2
    err, f = sse(p)
    residuals = [y - f * (1 - (1 - p) ** k) for k, y in zip(ns, acc)]
    rmse = math.sqrt(err / len(ns))
    return Fit(p, f, rmse, residuals, rmse > tol)


def observed_saturation(ns: Sequence[float], acc: Sequence[float], eps: float) -> float:
    """Smallest N on the measured grid whose per-unit gain to the next grid point is below ε
    (the last N when no step falls below it)."""
    for (n0, a0), (n1, a1) in zip(zip(ns, acc), zip(ns[1:], acc[1:])):
        if (a1 - a0) / (n1 - n0) < eps:
            return n0
    return ns[-1]


def pearson_r(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation (nan when either side is constant)."""
    n = len(xs)
    if n != len(ys) or n < 2:
        raise ValueError("need two equally long sequences of length >= 2")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def validate(pred_nstar: Sequence[float], obs_nstar: Sequence[float]) -> float:
    """Predicted vs observed saturation points: their Pearson r (the paper reports 0.803)."""
    return pearson_r(pred_nstar, obs_nstar)
