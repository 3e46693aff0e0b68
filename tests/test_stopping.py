"""Stopping rules and DeepConf on constructed cases where each must and must not fire, and on a
real model: token accounting equals what the backend produced."""

from __future__ import annotations

import logging

import pytest

from tts.strategies.confidence import group_confidences, lowest_group_confidence, percentile
from tts.strategies.deepconf import DeepConfVote, abort_point
from tts.strategies.stopping import AdaptiveConsistency, beta_leader_probability
from tts.types import Candidate, Problem


class Ctx:
    log = logging.getLogger("test")


def cands(answers, logprobs=None):
    return [Candidate("q", i, "policy", i, [], "", a, logprobs=(logprobs[i] if logprobs else None))
            for i, a in enumerate(answers)]


def test_beta_posterior_by_hand():
    """P(X > 1/2), X ~ Beta(v1+1, v2+1): (3, 0) → 1 − 2⁻⁴ = 0.9375; (4, 0) → 0.96875;
    (3, 1) → P(Bin(5, ½) ≤ 3) = 26/32 = 0.8125; ties → 0.5."""
    assert beta_leader_probability(3, 0) == 0.9375
    assert beta_leader_probability(4, 0) == 0.96875
    assert beta_leader_probability(3, 1) == 0.8125
    assert beta_leader_probability(5, 5) == 0.5


def test_adaptive_consistency_fires_only_when_settled():
    rule, p = AdaptiveConsistency(0.95, "beta"), Problem("q", "x")
    assert not rule.should_stop(p, cands(["4"] * 3), Ctx())
    assert rule.should_stop(p, cands(["4"] * 4), Ctx())
    assert not rule.should_stop(p, cands(["4", "4", "4", "5"]), Ctx())
    assert rule.should_stop(p, cands(["4"] * 9 + ["5"]), Ctx())
    assert not rule.should_stop(p, cands([None] * 8), Ctx())  # no answers: nothing is settled
    d = AdaptiveConsistency(0.95, "dirichlet")
    assert d.should_stop(p, cands(["4"] * 12), Ctx())
    assert not d.should_stop(p, cands(["4", "5"] * 6), Ctx())
    assert not AdaptiveConsistency(0.95, min_samples=6).should_stop(p, cands(["4"] * 5), Ctx())
    with pytest.raises(ValueError):
        AdaptiveConsistency(confidence=0.4)


def test_group_confidence_and_abort_point_by_hand():
    lps = [-0.1, -0.1, -2.0, -2.0, -0.1]
    assert group_confidences(lps, 2) == pytest.approx([-0.1, -1.05, -2.0, -1.05])
    assert lowest_group_confidence(lps, 2) == pytest.approx(-2.0)
    assert lowest_group_confidence(lps[:1], 4) == pytest.approx(-0.1)  # shorter than the window
    assert abort_point(lps, 2, -1.0) == 3  # after 3 tokens the last window (−0.1, −2.0) averages −1.05
    assert abort_point(lps, 2, -2.5) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 10) == 5


def test_deepconf_offline_drops_unconfident_majority():
    """Six unconfident traces say B, four confident ones say A: majority picks B, DeepConf keeping
    the top 40% by lowest group confidence picks A."""
    from tts.strategies.aggregators import Majority

    lps = [[-3.0] * 6] * 6 + [[-0.1] * 6] * 4
    cs = cands(["B"] * 6 + ["A"] * 4, lps)
    assert Majority().winners(cs) == ["B"]
    assert DeepConfVote(keep=0.4, window=3).winners(cs) == ["A"]
    assert DeepConfVote(keep=1.0, window=3).winners(cs) == ["B"]
    with pytest.raises(ValueError, match="log-probabilities"):
        DeepConfVote().winners(cands(["A"]))


async def run_tiny(tiny_model_dir, problems_file, tmp_path, generator: dict, n: int = 8):
    from conftest import tiny_recipe
    from tts.build import build_pieces
    from tts.controller import Controller
    from tts.recipe import parse_recipe
    from tts.records import read_records

    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    recipe["strategy"].update(generator=generator, n=n)
    await Controller(build_pieces(parse_recipe(recipe)), tmp_path / "run", limit=4, progress=False).run()
    return read_records(tmp_path / "run")


async def test_adaptive_consistency_in_a_real_run_counts_tokens_exactly(tiny_model_dir, problems_file, tmp_path):
    records = await run_tiny(tiny_model_dir, problems_file, tmp_path,
                             {"name": "sample", "role": "policy", "round_size": 2,
                              "stopping": {"name": "adaptive_consistency", "confidence": 0.9}})
    for r in records:
        assert r["status"] == "ok" and 2 <= len(r["candidates"]) <= 8
        assert r["cost"]["policy"]["completion_tokens"] == sum(c["completion_tokens"] for c in r["candidates"])


async def test_deepconf_online_aborts_and_accounts(tiny_model_dir, problems_file, tmp_path):
    records = await run_tiny(tiny_model_dir, problems_file, tmp_path,
                             {"name": "deepconf_online", "role": "policy", "warmup": 3, "keep": 0.5,
                              "window": 3, "round_size": 2}, n=7)
    aborted = [c for r in records for c in r["candidates"] if c["finish_reason"] == "aborted"]
    assert aborted, "with keep 50% some later traces must fall below the warm-up threshold"
    for c in aborted:
        assert c["answer"] is None and 3 <= c["completion_tokens"] < 12
    for r in records:
        assert len(r["candidates"]) == 7
        assert r["cost"]["policy"]["completion_tokens"] == sum(c["completion_tokens"] for c in r["candidates"])
