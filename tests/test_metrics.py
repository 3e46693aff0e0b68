"""Scaling metrics against brute-force enumeration on small cases, and the aggregators' rules."""

from __future__ import annotations

import itertools
import random

import pytest

from tts.evals.metrics import aggregator_at_k, mean_ci, paired_bootstrap, pass_at_k
from tts.strategies.aggregators import Best, Majority, Weighted
from tts.types import Candidate


def cands(answers, grades, scores=None):
    return [Candidate("p", i, "policy", i, [], "", a, {"s": (scores or [0] * len(answers))[i]}, grade=g)
            for i, (a, g) in enumerate(zip(answers, grades))]


@pytest.mark.parametrize("n,c", [(5, 0), (5, 2), (6, 3), (8, 1), (7, 7)])
def test_pass_at_k_equals_subset_enumeration(n, c):
    correct = [True] * c + [False] * (n - c)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(range(n), k))
        brute = sum(any(correct[i] for i in s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(brute)


def brute_majority(candidates, k):
    """Every k-subset, every order of the distinct answers as a tie-break: the first top answer."""
    total, count = 0.0, 0
    for subset in itertools.combinations(candidates, k):
        votes = {}
        for c in subset:
            if c.answer is not None:
                votes[c.answer] = votes.get(c.answer, 0) + 1
        grade = {c.answer: c.grade for c in subset}
        if not votes:
            total, count = total, count + 1
            continue
        top = max(votes.values())
        orders = list(itertools.permutations(votes))
        total += sum(grade[next(a for a in order if votes[a] == top)] for order in orders) / len(orders)
        count += 1
    return total / count


CASES = [
    (["1", "1", "2", "2", "3", None], [1, 1, 0, 0, 0, 0]),
    (["a", "b", "c", "d", "a", "b"], [0, 1, 0, 0, 0, 1]),
    (["x", "x", "x", "y", "y", "z", "z"], [0, 0, 0, 1, 1, 0, 0]),
]


@pytest.mark.parametrize("answers,grades", CASES)
def test_majority_at_k_equals_brute_force_with_tie_expectation(answers, grades):
    c = cands(answers, grades)
    for k in range(1, len(c) + 1):
        exact = aggregator_at_k(Majority(), c, k, count=10_000, rng=random.Random(0))
        assert exact == pytest.approx(brute_majority(c, k))
        sampled = aggregator_at_k(Majority(), c, k, count=3000, rng=random.Random(1)) if k in (2, 3) else exact
        assert sampled == pytest.approx(exact, abs=0.05)


def test_weighted_and_best_rules():
    c = cands(["1", "1", "2"], [0, 0, 1], scores=[0.3, 0.3, 0.5])
    assert Majority().winners(c) == ["1"]
    assert Weighted("s").winners(c) == ["1"]  # 0.6 > 0.5
    assert Best("s").winners(c) == ["2"]
    tie = cands(["1", "2"], [1, 0], scores=[0.5, 0.5])
    assert aggregator_at_k(Best("s"), tie, 2, 10, random.Random(0)) == 0.5  # expected value of a coin flip
    with pytest.raises(KeyError, match="needs selector"):
        Weighted("missing").tally(c)


def test_bootstrap_intervals():
    rng = random.Random(0)
    values = [rng.random() < 0.6 for _ in range(400)]
    mean, lo, hi = mean_ci([float(v) for v in values])
    assert lo < mean < hi and lo < 0.6 < hi and hi - lo < 0.12
    same = [0.3] * 50
    assert paired_bootstrap([x + 0.1 for x in same], same) == pytest.approx((0.1, 0.1, 0.1))
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0])
