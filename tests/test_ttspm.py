"""TTSPM (specs/ttspm.md): the spec's known answers, closed form vs brute force, Monte Carlo,
the Jensen bound, estimators, the curve fit (and its reported misfit on majority-vote curves),
and the saturation stopping rule, which must never read grades."""

from __future__ import annotations

import math
import random

import pytest

from tts.budget.ttspm import (dataset_curve, dataset_upper_bound, estimate_p_parallel,
                              estimate_p_sequential, fit_ttspm, marginal_gain, observed_saturation,
                              relapse_rate, saturation_point, sequential_curve, ttspm_curve, validate)


@pytest.mark.parametrize("p,f_max,eps,want", [(0.3, 1.0, 0.01, 10), (0.05, 0.8, 0.005, 41), (0.5, 1.0, 0.2, 2),
                                              (0.9, 1.0, 0.01, 2), (0.3, 1.0, 0.5, 0)])
def test_known_saturation_points(p, f_max, eps, want):
    assert saturation_point(p, eps, f_max) == want


def test_known_gains_and_continuous_variant():
    assert marginal_gain(9, 0.3) == pytest.approx(0.0121, abs=5e-5)
    assert marginal_gain(10, 0.3) == pytest.approx(0.0085, abs=5e-5)
    assert saturation_point(0.3, 0.01, mode="continuous") == pytest.approx(10.02, abs=0.005)
    assert saturation_point(0.0, 0.01) == 0 and saturation_point(1.0, 0.01) == 1


def brute(p: float, eps: float, f_max: float) -> int:
    n = 0
    while marginal_gain(n, p, f_max) >= eps:
        n += 1
    return n


def test_closed_form_matches_brute_force_including_integer_boundaries():
    rng = random.Random(0)
    for _ in range(3000):
        p, f_max = rng.uniform(0.001, 0.999), rng.uniform(0.05, 1.0)
        eps = 10 ** rng.uniform(-5, 0)
        assert saturation_point(p, eps, f_max) == brute(p, eps, f_max), (p, eps, f_max)
    for p in (0.5, 0.25, 0.1):  # x exactly an integer: ε = ΔF(k), so N* = k + 1 under strict "<"
        for k in range(6):
            eps = marginal_gain(k, p)
            assert saturation_point(p, eps) == brute(p, eps, 1.0)


def test_monte_carlo_parallel_and_sequential_hit_rates():
    rng = random.Random(1)
    p, trials = 0.15, 4000
    for n in (1, 2, 4, 8, 16, 32):
        want = ttspm_curve(n, p)
        se = math.sqrt(want * (1 - want) / trials)
        par = sum(any(rng.random() < p for _ in range(n)) for _ in range(trials)) / trials
        seq = 0
        for _ in range(trials):  # two-state chain, s1 absorbing
            state = False
            for _ in range(n):
                state = state or rng.random() < p
            seq += state
        assert abs(par - want) <= 3 * se + 1e-9 and abs(seq / trials - want) <= 3 * se + 1e-9


def test_jensen_bound_and_sequential_form():
    ps = [0.0, 0.1, 0.9]
    assert dataset_curve(ps, 4) == pytest.approx(0.4479, abs=1e-4)
    assert dataset_upper_bound(ps, 4) == pytest.approx(0.8025, abs=1e-3)
    assert sequential_curve(3, 0.2, 0.2) == pytest.approx(ttspm_curve(4, 0.2))


def test_estimators_recover_p_on_simulated_data():
    rng = random.Random(2)
    assert estimate_p_parallel([rng.random() < 0.3 for _ in range(20000)]) == pytest.approx(0.3, abs=0.015)
    rollouts = []
    for _ in range(3000):
        s = [rng.random() < 0.2]
        for _ in range(5):
            s.append(s[-1] or rng.random() < 0.35)
        rollouts.append(s)
    assert estimate_p_sequential(rollouts) == pytest.approx(0.35, abs=0.02)
    assert relapse_rate(rollouts) == 0.0
    assert relapse_rate([[True, False, True], [True, True]]) == 0.5
    with pytest.raises(ValueError, match="not identifiable"):
        estimate_p_sequential([[True, True]])


def test_fit_recovers_parameters_from_noisy_curves():
    rng = random.Random(3)
    ns = [1, 2, 4, 8, 16, 32]
    for p, f_max in ((0.1, 0.9), (0.3, 0.6), (0.05, 1.0)):
        acc = [ttspm_curve(n, p, f_max) + rng.gauss(0, 0.005) for n in ns]
        fit = fit_ttspm(ns, acc)
        assert fit.p == pytest.approx(p, rel=0.15) and fit.f_max == pytest.approx(f_max, abs=0.03)
        assert not fit.misfit


def test_majority_vote_curve_misfit_is_reported():
    """Three answers with probabilities (0.4 right, 0.35, 0.25 wrong): majority accuracy rises in an
    S-shape from 0.4 toward 1, which the concave TTSPM curve (anchored at 0) cannot follow."""
    from itertools import product

    probs = {"a": 0.4, "b": 0.35, "c": 0.25}

    def maj_acc(n: int) -> float:
        if n > 9:  # simulate large N
            rng, hits = random.Random(n), 0
            for _ in range(4000):
                draw = rng.choices(list(probs), weights=list(probs.values()), k=n)
                counts = {k: draw.count(k) for k in probs}
                top = max(counts.values())
                hits += (counts["a"] == top) / sum(v == top for v in counts.values())
            return hits / 4000
        total = 0.0
        for draw in product(probs, repeat=n):
            counts = {k: draw.count(k) for k in probs}
            top = max(counts.values())
            w = math.prod(probs[x] for x in draw)
            total += w * (counts["a"] == top) / sum(v == top for v in counts.values())
        return total

    ns = [1, 2, 4, 8, 16, 32]
    fit = fit_ttspm(ns, [maj_acc(n) for n in ns], tol=0.01)
    assert fit.misfit and fit.rmse > 0.01
    assert fit.to_dict()["misfit"] is True


def test_monotonicity_and_observed_saturation():
    ns_eps = [saturation_point(0.2, e) for e in (0.001, 0.005, 0.01, 0.05, 0.1)]
    assert ns_eps == sorted(ns_eps, reverse=True)
    big_p = [saturation_point(p, 0.01) for p in (0.5, 0.6, 0.7, 0.8, 0.9, 0.99)]
    assert big_p == sorted(big_p, reverse=True)
    assert saturation_point(0.001, 0.01) == 0  # tiny p: below ε from the start
    ns = [1, 2, 4, 8, 16, 32]
    assert observed_saturation(ns, [0.3, 0.5, 0.7, 0.8, 0.82, 0.83], 0.02) == 8
    assert validate([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)


def test_saturation_stop_reads_votes_never_grades():
    from tts.strategies.stopping import SaturationStop
    from tts.types import Candidate, Problem

    class Ctx:
        import logging
        log = logging.getLogger("t")

    def cands(answers, grades):
        return [Candidate("q", i, "policy", i, [], "", a, grade=g) for i, (a, g) in enumerate(zip(answers, grades))]

    rule = SaturationStop(eps=0.05, min_samples=2)
    agree = ["4", "4", "4", "4"]
    split = ["1", "2", "3", "4"]
    # all agree: p̂ = 1, N* = 1 -> stop; p̂ = 0.25 gives N* = 7 -> go on.
    assert rule.should_stop(Problem("q", "x"), cands(agree, [0] * 4), Ctx())
    assert not rule.should_stop(Problem("q", "x"), cands(split, [1] * 4), Ctx())
    # grades flipped: same decisions
    assert rule.should_stop(Problem("q", "x"), cands(agree, [1] * 4), Ctx())
    assert not rule.should_stop(Problem("q", "x"), cands(split, [0] * 4), Ctx())
    assert not rule.should_stop(Problem("q", "x"), cands(["4"], [1]), Ctx())  # below min_samples


async def test_saturation_stop_in_a_real_run(tiny_model_dir, problems_file, tmp_path):
    from conftest import tiny_recipe
    from tts.controller import Controller
    from tts.build import build_pieces
    from tts.recipe import parse_recipe
    from tts.records import read_records

    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    recipe["strategy"]["n"] = 8
    recipe["strategy"]["generator"].update(round_size=2, stopping={"name": "saturation", "eps": 0.2,
                                                                  "source": "confidence"})
    recipe["selectors"] = [{"name": "confidence", "as": "confidence"}]
    pieces = build_pieces(parse_recipe(recipe))
    await Controller(pieces, tmp_path / "run", limit=4, progress=False).run()
    records = read_records(tmp_path / "run")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert all(2 <= len(r["candidates"]) <= 8 and len(r["candidates"]) % 2 == 0 for r in records)
    assert all("confidence" in c["scores"] for r in records for c in r["candidates"])
