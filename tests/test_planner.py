"""The Kinetics planner on synthetic traces: frontier properties, the model choice flipping with the
budget, the tokens power law, and trace files that will not read."""

from __future__ import annotations

import random

import pytest

from tts.evals.planner import configs_of, cost_grid, fit_power_law, oracle_frontier, plan
from tts.cost.shape import ModelShape
from tts.evals.traces import ProblemTraces, TraceError, TraceSet, read_traces

SMALL = ModelShape(params=int(6e8), active_params=int(6e8), num_layers=28, num_heads=16, num_kv_heads=8,
                   head_dim=128)
BIG = ModelShape(params=int(8e9), active_params=int(8e9), num_layers=36, num_heads=32, num_kv_heads=8,
                 head_dim=128)


def synthetic(label: str, shape: ModelShape, p_of: float, seed: int) -> TraceSet:
    rng = random.Random(seed)
    ts = TraceSet(label, shape)
    for i in range(40):
        p = min(1.0, max(0.0, p_of + rng.uniform(-0.3, 0.3)))
        toks = [rng.randint(2000, 8000) for _ in range(16)]
        ts.problems[f"q{i}"] = ProblemTraces(f"q{i}", 200, toks, [float(rng.random() < p) for _ in range(16)],
                                             [str(rng.randint(0, 3)) for _ in range(16)])
    return ts


def test_frontier_properties():
    sets = [synthetic("small", SMALL, 0.2, 0), synthetic("big", BIG, 0.6, 1)]
    configs, problems = configs_of(sets)
    grid = cost_grid(configs, 60)
    oracle, _ = oracle_frontier(configs, problems, grid)
    assert all(b >= a - 1e-12 for a, b in zip(oracle, oracle[1:]))  # non-decreasing in the cap
    for cfg in configs:  # the per-problem oracle bounds every fixed config
        assert all(o >= cfg.fixed_accuracy(c, problems) - 1e-12 for o, c in zip(oracle, grid))


def test_the_choice_follows_the_budget():
    sets = [synthetic("small", SMALL, 0.25, 0), synthetic("big", BIG, 0.7, 1)]
    configs, _ = configs_of(sets)
    small1 = next(c for c in configs if c.label == "small" and c.n == 1)
    big1 = next(c for c in configs if c.label == "big" and c.n == 1)
    low = plan(sets, max(small1.cost.values()) * 1.01)  # only the small model fits
    assert low["recommended"]["model"] == "small"
    high = plan(sets, max(big1.cost.values()) * 4.1)  # the big model at N = 4 fits everywhere
    assert high["recommended"]["model"] == "big" and high["recommended"]["n"] >= 2
    assert high["oracle_accuracy"] >= high["recommended"]["accuracy"]
    maj = plan(sets, max(big1.cost.values()) * 4.1, metric="majority")
    assert maj["recommended"]["accuracy"] <= high["recommended"]["accuracy"] + 1e-9  # maj@N ≤ pass@N
    with pytest.raises(ValueError, match="metric"):
        plan(sets, 1e12, metric="best")
    with pytest.raises(ValueError, match="positive"):
        plan(sets, -1)


def test_power_law_fit_recovers_parameters():
    rng = random.Random(3)
    xs = [10 ** (k / 10) for k in range(1, 40)]
    ys = [91.68 * x ** 0.8 * rng.lognormvariate(0, 0.01) for x in xs]
    a, b, off = fit_power_law(xs, ys)
    assert a == pytest.approx(91.68, rel=0.05) and b == pytest.approx(0.8, abs=0.01) and off == 0
    ys = [81.77 * x ** 0.25 - 212 + rng.gauss(0, 0.5) for x in xs]
    a, b, off = fit_power_law(xs, ys, offset=None)
    assert b == pytest.approx(0.25, abs=0.03) and off == pytest.approx(-212, rel=0.1)


def test_bad_traces(tmp_path):
    with pytest.raises(TraceError, match="not found"):
        read_traces(tmp_path / "none.jsonl")
    (tmp_path / "t.jsonl").write_text('{"model": "m", "shape": {"params": 10, "bogus": 1}, "problem": 1, '
                                      '"samples": []}\n')
    with pytest.raises(TraceError, match="t.jsonl:1: bad model shape"):
        read_traces(tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="share no problem"):
        a, b = synthetic("a", SMALL, 0.5, 0), synthetic("b", SMALL, 0.5, 1)
        b.problems = {f"z{k}": v for k, v in b.problems.items()}
        configs_of([a, b])
