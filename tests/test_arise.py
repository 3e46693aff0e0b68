"""ARISE (specs/arise.md): the spec's hand-worked cases, the metric's properties, the slope-metric
counterexample, the adaptive sampler and budget split, and a real levels run on a real model."""

from __future__ import annotations

import math
import random

import pytest

from tts.evals.arise import (AdaptiveSampler, allocate_budget, arise_dataset, arise_sample, score_cells,
                         slope_metric)


@pytest.mark.parametrize("acc,tok,want", [((0, 1), (100, 200), 0.5), ((1, 0), (100, 200), -2.0),
                                          ((0, 1, 1), (50, 50, 50), 1.0), ((1, 0, 1), (100, 200, 400), -1.5),
                                          ((0.2, 0.6), (100, 100), 0.4), ((1,), (100,), 0.0),
                                          ((0, 1), (200, 100), 2.0), ((1, 0), (200, 100), -0.5)])
def test_hand_worked_cases(acc, tok, want):
    assert arise_sample(acc, tok) == pytest.approx(want)


def test_multi_level_example_by_hand():
    """Two problems over three levels (tokens 100 → 150 → 300):
    A: 0 → 1 → 1: +1·(100/150) = +0.6667, then 0.
    B: 1 → 0 → 1: −1·(150/100) = −1.5, then +1·(150/300) = +0.5 → −1.0.
    Dataset: (0.6667 − 1.0) / 2 = −0.1667; the slope metric sees (1 − 0.5)/(300 − 100) = +0.0025."""
    samples = [((0, 1, 1), (100, 150, 300)), ((1, 0, 1), (100, 150, 300))]
    score, stats = arise_dataset(samples)
    assert score == pytest.approx((2 / 3 - 1.0) / 2)
    assert stats["improved"] == 2 and stats["degraded"] == 1 and stats["always_correct"] == 0
    assert slope_metric(0.5, 1.0, 100, 300) == pytest.approx(0.0025)
    assert slope_metric(0.5, 1.0, 300, 300) == 0.0


def test_properties():
    rng = random.Random(0)
    for _ in range(200):
        k = rng.randint(2, 5)
        acc = [rng.random() for _ in range(k)]
        tok = [rng.uniform(10, 1000) for _ in range(k)]
        assert arise_sample(acc, [50] * k) == pytest.approx(acc[-1] - acc[0])  # telescoping
        assert arise_sample(acc, [3.7 * t for t in tok]) == pytest.approx(arise_sample(acc, tok))  # scale
        assert arise_sample(acc[::-1], tok[::-1]) == pytest.approx(-arise_sample(acc, tok))  # reversal
    g = 2.5  # asymmetry: equal |Δa|, tokens grow by g
    assert abs(arise_sample((1, 0), (1, g))) > arise_sample((0, 1), (1, g))


def test_same_slope_different_arise():
    """Identical accuracy (0.5 → 0.5) and tokens (100 → 200) per level, so the same slope (0);
    in one dataset nobody changes, in the other one sample degrades and one improves."""
    tok = (100, 200)
    stable = [((0, 0), tok), ((1, 1), tok)]
    churn = [((1, 0), tok), ((0, 1), tok)]
    for data in (stable, churn):
        assert [sum(a[j] for a, _ in data) / 2 for j in (0, 1)] == [0.5, 0.5]
    assert arise_dataset(stable)[0] == 0.0
    assert arise_dataset(churn)[0] == pytest.approx((-2.0 + 0.5) / 2)
    assert slope_metric(0.5, 0.5, 100, 200) == 0.0


def test_sampler_cases():
    s = AdaptiveSampler()
    out = s.sample(lambda: (1.0, 100.0))
    assert (out["n_runs"], out["converged"], out["accuracy"]) == (3, True, 1.0)
    flip = iter([1.0, 0.0] * 10)
    out = s.sample(lambda: (next(flip), 100.0))
    assert out["n_runs"] == 10 and not out["converged"]
    toks = iter([10.0, 1000.0] * 10)  # accuracy constant, tokens vary
    out = s.sample(lambda: (1.0, next(toks)))
    assert out["n_runs"] == 10 and out["final_cv"] > 0.5
    assert s.sample(lambda: (0.0, 100.0))["n_runs"] == 3  # all wrong: CV_acc is 0 by eps

    def seeded(seed):
        rng = random.Random(seed)
        return s.sample(lambda: (float(rng.random() < 0.6), rng.lognormvariate(5, 0.3)))["n_runs"]
    assert seeded(4) == seeded(4)
    with pytest.raises(ValueError):
        AdaptiveSampler(5, 3)


def test_budget_allocation_by_hand():
    assert allocate_budget({"a": 0.0, "b": 1.0, "c": 3.0}, 15) == {"a": 3, "b": 4, "c": 7}
    assert allocate_budget({"a": 0.0, "b": 0.0}, 100) == {"a": 3, "b": 3}
    assert allocate_budget({"a": 1.0, "b": 9.0}, 6) == {"a": 3, "b": 3}
    assert allocate_budget({"a": 1.0, "b": 100.0}, 200)["b"] == 10  # capped at m_max


def test_adaptive_sampling_reduces_variance():
    """Bernoulli(p) outcomes with lognormal tokens: across repeats, the dataset ARISE from adaptive
    cells varies less than from single runs."""
    rng = random.Random(7)
    ps = [[rng.uniform(0.2, 0.9) for _ in range(3)] for _ in range(30)]

    def one(adaptive: bool, seed: int) -> float:
        r = random.Random(seed)
        cells = {}
        for i, row in enumerate(ps):
            levels = []
            for j, p in enumerate(row):
                draw = lambda: (float(r.random() < p), r.lognormvariate(5 + 0.5 * j, 0.4))  # noqa: E731
                runs = [draw()]
                if adaptive:
                    sampler = AdaptiveSampler()
                    while sampler.wants_more(runs):
                        runs.append(draw())
                levels.append(runs)
            cells[str(i)] = levels
        return score_cells(cells)["arise"]

    single = [one(False, s) for s in range(40)]
    adapt = [one(True, s) for s in range(40)]
    std = lambda xs: math.sqrt(sum((x - sum(xs) / len(xs)) ** 2 for x in xs) / len(xs))  # noqa: E731
    assert std(adapt) < 0.7 * std(single)


async def test_levels_run_on_a_real_model(tiny_model_dir, problems_file, tmp_path):
    """Three max-token levels, adaptive runs: every sub-run is a normal run folder, `tts arise`
    reads them back, and a killed run resumes from what was recorded."""
    from conftest import tiny_recipe
    from tts.evals.levels import collect_cells, run_levels
    from tts.recipe import parse_recipe

    data = tiny_recipe(tiny_model_dir, problems_file, tmp_path, limit=4)
    data["strategy"]["n"] = 2
    data["levels"] = {"field": "roles.policy.sampling.max_tokens", "values": [2, 6, 12],
                      "min_runs": 2, "max_runs": 4, "threshold": 0.3}
    recipe = parse_recipe(data)
    result = await run_levels(recipe, tmp_path / "lv")
    cells = collect_cells(tmp_path / "lv", 3)
    assert set(cells) == {f"p{i:02d}" for i in range(4)}
    for runs in cells.values():
        assert all(2 <= len(r) <= 4 for r in runs)
        assert runs[0][0][1] < runs[2][0][1]  # more max tokens, more tokens
    assert len(result["level_tokens"]) == 3 and result["level_tokens"][0] < result["level_tokens"][2]
    assert sum(result["level_runs"]) > 3 * 4 * 2 or all(len(r) == 2 for v in cells.values() for r in v)
    again = await run_levels(recipe, tmp_path / "lv")  # resume: nothing new to run, same score
    assert again["arise"] == pytest.approx(result["arise"])
    bad = dict(data, levels={**data["levels"], "field": "seed"})
    from tts.components import RecipeError
    with pytest.raises(RecipeError, match="cannot vary across levels"):
        parse_recipe(bad)


def test_budget_split_caps_come_from_the_probe_runs():
    """Cells whose probes vary get the extra runs; the probe runs themselves are kept."""
    from tts.evals.levels import _caps

    cells = {"steady": [[(1.0, 10.0)] * 3, [(1.0, 20.0)] * 3],
             "noisy": [[(1.0, 10.0), (0.0, 10.0), (1.0, 10.0)], [(1.0, 20.0)] * 3]}
    caps = _caps(cells, AdaptiveSampler(), total=15)
    assert caps[("steady", 0)] == caps[("steady", 1)] == caps[("noisy", 1)] == 3
    assert caps[("noisy", 0)] == 6  # 12 probe runs, 3 extra, all to the only varying cell
