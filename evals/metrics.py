"""Scaling metrics over stored candidates: exact pass@k, aggregator@k averaged over random
subsets without replacement (exactly enumerated when few), ties scored as the expected value
over random tie-breaks, and paired bootstrap intervals."""

from __future__ import annotations

import functools
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
    return aggregators_at_k([aggregator], candidates, k, count, rng)[0]


def aggregators_at_k(aggregators: Sequence[Any], candidates: Sequence[Candidate], k: int, count: int,
                     rng: random.Random) -> list[float]:
    """`aggregator_at_k` of several aggregators on the same subsets (drawn once: a paired comparison)."""
    chosen_sets = [[candidates[i] for i in idx] for idx in subsets(len(candidates), k, count, rng)]
    return [sum(answer_value(agg.winners(chosen), chosen) for chosen in chosen_sets) / len(chosen_sets)
            for agg in aggregators]


def mean_ci(values: Sequence[float], reps: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean with a percentile bootstrap interval over items. The resamples are index draws of
    numpy's PCG64 seeded with `seed`, drawn once per (n, reps, seed) and shared by every column of
    a table."""
    if not values:
        return (float("nan"),) * 3
    import numpy as np

    n = len(values)
    means = np.sort(np.asarray(values, dtype=np.float64)[_resamples(n, reps, seed)].sum(axis=1) / n)
    lo, hi = means[int((1 - level) / 2 * reps)], means[min(reps - 1, int((1 + level) / 2 * reps))]
    return sum(values) / n, float(lo), float(hi)


@functools.lru_cache(maxsize=16)
def _resamples(n: int, reps: int, seed: int) -> Any:
    """A (reps, n) array of bootstrap indices from the seeded generator (vectorised: a pure-Python
    draw cost 2 s per summary of 1,000 problems)."""
    import numpy as np

    out = np.random.Generator(np.random.PCG64(seed)).integers(0, n, size=(reps, n), dtype=np.int64)
    out.flags.writeable = False
    return out


def paired_bootstrap(a: Sequence[float], b: Sequence[float], reps: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a − b over the same items, with a paired percentile bootstrap interval."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same items on both sides")
    return mean_ci([x - y for x, y in zip(a, b)], reps, seed, level)
