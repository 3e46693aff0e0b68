"""ARISE (Yin et al. 2025, arXiv 2510.06014): a per-sample score of how well extra test-time compute
turns into accuracy, following specs/arise.md, which matches the reference code
(`code/arise_metric.py`, `code/adaptive_sampling.py`) exactly for the metric and the sampler.

Per sample, over levels ordered by compute, each transition contributes Δa · (t_{j−1}/t_j)^sign(Δa):
gains that cost more tokens are discounted, losses that cost more tokens are amplified. The dataset
score is the plain mean over samples. One deviation from the reference, by design: the budgeted
variant reuses its m_min probe runs instead of discarding them."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def arise_sample(acc: Sequence[float], tokens: Sequence[float]) -> float:
    """Σ_j Δa_j · W_j with W_j = (t_{j−1}/t_j)^sign(Δa_j); zero Δa contributes nothing, and a
    transition with a non-positive token count is skipped (as in the reference)."""
    if len(acc) != len(tokens):
        raise ValueError("need one token count per level")
    total = 0.0
    for j in range(1, len(acc)):
        delta = acc[j] - acc[j - 1]
        if delta == 0 or tokens[j] <= 0 or tokens[j - 1] <= 0:
            continue
        ratio = tokens[j - 1] / tokens[j]
        total += delta * (ratio if delta > 0 else 1.0 / ratio)
    return total


def arise_dataset(samples: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[float, dict[str, Any]]:
    """(mean ARISE over samples, stats: per-sample scores, spread, transition counts)."""
    if not samples:
        raise ValueError("need at least one sample")
    scores = [arise_sample(a, t) for a, t in samples]
    mean = sum(scores) / len(scores)
    counts = {"always_correct": 0, "always_wrong": 0, "improved": 0, "degraded": 0}
    for acc, _ in samples:
        if all(a >= 1 for a in acc):
            counts["always_correct"] += 1
        elif all(a <= 0 for a in acc):
            counts["always_wrong"] += 1
        steps = [b - a for a, b in zip(acc, acc[1:])]
        counts["improved"] += sum(d > 0 for d in steps)
        counts["degraded"] += sum(d < 0 for d in steps)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return mean, {"scores": scores, "std": std, "min": min(scores), "max": max(scores), **counts}


def slope_metric(base_acc: float, final_acc: float, base_tok: float, final_tok: float) -> float:
    """The traditional Δacc/Δtokens between the first and last level (0 if tokens did not grow)."""
    return (final_acc - base_acc) / (final_tok - base_tok) if final_tok > base_tok else 0.0


@dataclass(frozen=True)
class AdaptiveSampler:
    """Dynamic sampling of one (problem, level) cell: m_min runs, then one more at a time while the
    combined coefficient of variation CV_acc + CV_tok exceeds `threshold` and n < m_max."""

    m_min: int = 3
    m_max: int = 10
    threshold: float = 0.5
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if not 1 <= self.m_min <= self.m_max:
            raise ValueError(f"need 1 <= min runs <= max runs, got {self.m_min} and {self.m_max}")

    def cv(self, runs: Sequence[tuple[float, float]]) -> float:
        """CV_acc + CV_tok with population standard deviations (eps keeps all-wrong cells at 0)."""
        def one(xs: list[float]) -> float:
            m = sum(xs) / len(xs)
            return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs)) / (m + self.eps)
        return one([float(a) for a, _ in runs]) + one([float(t) for _, t in runs])

    def wants_more(self, runs: Sequence[tuple[float, float]], m_max: int | None = None) -> bool:
        """Whether this cell needs another run (the orchestrator asks after each round)."""
        cap = self.m_max if m_max is None else m_max
        return len(runs) < self.m_min or (len(runs) < cap and self.cv(runs) > self.threshold)

    def sample(self, run_fn: Callable[[], tuple[float, float]], m_max: int | None = None) -> dict[str, Any]:
        """Draw runs of `run_fn() -> (correct, tokens)` until the cell is stable or capped."""
        runs: list[tuple[float, float]] = []
        while self.wants_more(runs, m_max):
            runs.append(run_fn())
        return self.summary(runs)

    def summary(self, runs: Sequence[tuple[float, float]]) -> dict[str, Any]:
        cv = self.cv(runs)
        return {"accuracy": sum(a for a, _ in runs) / len(runs), "tokens": sum(t for _, t in runs) / len(runs),
                "n_runs": len(runs), "converged": cv <= self.threshold, "final_cv": cv}


def allocate_budget(initial_cv: dict[Any, float], total_budget: int, m_min: int = 3,
                    m_max: int = 10) -> dict[Any, int]:
    """Budgeted variant: every cell gets m_min runs; the rest of `total_budget` goes to cells in
    proportion to their CV (floored), capped at m_max."""
    base = len(initial_cv) * m_min
    total_cv = sum(initial_cv.values())
    if total_budget <= base or total_cv == 0:
        return {cell: m_min for cell in initial_cv}
    extra = total_budget - base
    return {cell: min(m_max, m_min + math.floor(extra * cv / total_cv)) for cell, cv in initial_cv.items()}


def bootstrap_interval(samples: Sequence[tuple[Sequence[float], Sequence[float]]], reps: int = 2000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the dataset ARISE over problems resampled with replacement."""
    scores = [arise_sample(a, t) for a, t in samples]
    rng, n = random.Random(seed), len(scores)
    means = sorted(sum(scores[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    return means[int((1 - level) / 2 * reps)], means[min(reps - 1, int((1 + level) / 2 * reps))]


def score_cells(cells: dict[str, list[list[tuple[float, float]]]]) -> dict[str, Any]:
    """ARISE, its interval and the slope metric from runs per problem per level:
    `cells[problem][level] = [(correct, tokens), ...]`."""
    samples, per_level = [], None
    for levels in cells.values():
        acc = [sum(a for a, _ in runs) / len(runs) for runs in levels]
        tok = [sum(t for _, t in runs) / len(runs) for runs in levels]
        samples.append((acc, tok))
        per_level = per_level or [[0.0, 0.0, 0] for _ in levels]
        for j, (a, t) in enumerate(zip(acc, tok)):
            per_level[j][0] += a
            per_level[j][1] += t
            per_level[j][2] += len(levels[j])
    score, stats = arise_dataset(samples)
    lo, hi = bootstrap_interval(samples)
    n = len(samples)
    acc_l = [row[0] / n for row in per_level or []]
    tok_l = [row[1] / n for row in per_level or []]
    return {"arise": score, "arise_lo": lo, "arise_hi": hi, "problems": n,
            "slope": slope_metric(acc_l[0], acc_l[-1], tok_l[0], tok_l[-1]),
            "level_accuracy": acc_l, "level_tokens": tok_l,
            "level_runs": [row[2] for row in per_level or []],
            **{k: v for k, v in stats.items() if k != "scores"}}
