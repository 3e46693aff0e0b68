"""Scaling metrics over stored candidates: exact pass@k, aggregator@k averaged over random
subsets without replacement (exactly enumerated when few), ties scored as the expected value
over random tie-breaks, and paired bootstrap intervals."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Any

from tts.types import Candidate


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, have {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def answer_value(winners: list[str], candidates: Sequence[Candidate]) -> float:
    """Expected grade when one of the tied `winners` is picked uniformly at random."""
    if not winners:
        return 0.0
    grade = {}
    for c in candidates:
        if c.answer is not None and c.answer not in grade:
            grade[c.answer] = c.grade or 0.0
    return sum(grade.get(w, 0.0) for w in winners) / len(winners)


def subsets(n: int, k: int, count: int, rng: random.Random) -> list[tuple[int, ...]]:
    """All k-subsets of range(n) when there are at most `count`, else `count` random ones."""
    if math.comb(n, k) <= count:
        return list(itertools.combinations(range(n), k))
    return [tuple(sorted(rng.sample(range(n), k))) for _ in range(count)]


def aggregator_at_k(aggregator: Any, candidates: Sequence[Candidate], k: int, count: int,
                    rng: random.Random) -> float:
    """Mean (over subsets of size k) of the aggregator's expected grade."""
    values = []
    for idx in subsets(len(candidates), k, count, rng):
        chosen = [candidates[i] for i in idx]
        values.append(answer_value(aggregator.winners(chosen), chosen))
    return sum(values) / len(values)


def mean_ci(values: Sequence[float], reps: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean with a percentile bootstrap interval over items."""
    if not values:
        return (float("nan"),) * 3
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    lo, hi = means[int((1 - level) / 2 * reps)], means[min(reps - 1, int((1 + level) / 2 * reps))]
    return sum(values) / n, lo, hi


def paired_bootstrap(a: Sequence[float], b: Sequence[float], reps: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a − b over the same items, with a paired percentile bootstrap interval."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same items on both sides")
    return mean_ci([x - y for x, y in zip(a, b)], reps, seed, level)
