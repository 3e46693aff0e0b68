"""ATTS: the conformal p-value and its rejection-rate guarantee (by simulation), the step scorer
against a direct forward pass, the asynchronous vs synchronous schedulers on a fake backend with
set latencies (a control-flow test), and the generator end to end on the toy draft/target pair."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tts.budget import Budget
from tts.context import StrategyContext
from tts.cost.shape import ModelShape
from tts.ledger import Ledger
from tts.prompts import PromptSpec
from tts.roles import Role
from tts.strategies.atts import ATTS, ConformalCalibrator, StepScorer, alpha_for_budget, exact_rejection_rate
from tts.strategies.atts.conformal import ConformalError
from tts.strategies.atts.runner import arithmetic_intensity
from tts.types import Capabilities, Completion, Generation, Problem, Sampling, StreamDelta


# -- p-values ---------------------------------------------------------------------------------------
def test_p_values_from_the_spec():
    cal = ConformalCalibrator(alpha=0.4).fit([1, 2, 3, 4])
    assert cal.p_value(2.5) == pytest.approx(0.6) and not cal.reject(2.5)  # needs p > 0.6
    assert cal.p_value(4.5) == 1.0 and cal.reject(4.5)
    assert cal.p_value(0.5) == pytest.approx(0.2) and not cal.reject(0.5)
    assert cal.p_value(2.0) == pytest.approx(0.6)  # a tie counts as "<=": #{r_i <= 2} = 2
    assert cal.reject(math.inf) and cal.reject(math.nan)  # unscorable steps always go to the target


def test_p_value_monotone_and_invariant_to_the_perplexity_transform():
    rng = random.Random(0)
    bank = [rng.lognormvariate(0, 1) for _ in range(50)]
    log_cal = ConformalCalibrator(alpha=0.3).fit(bank)
    ppl_cal = ConformalCalibrator(alpha=0.3).fit([math.exp(x) for x in bank])
    xs = sorted(rng.uniform(0, 6) for _ in range(200))
    ps = [log_cal.p_value(x) for x in xs]
    assert ps == sorted(ps)
    assert ps == [ppl_cal.p_value(math.exp(x)) for x in xs]


def test_banks_per_question_online_updates_and_cap():
    cal = ConformalCalibrator("per_question", alpha=0.5, bank_max=3)
    with pytest.raises(ConformalError, match="question id"):
        cal.p_value(1.0)
    with pytest.raises(ConformalError, match="empty calibration bank for question q1"):
        cal.p_value(1.0, "q1")
    cal.fit_per_question({"q1": [1, 2], "q2": [10, 20]})
    assert cal.p_value(1.5, "q1") == pytest.approx(2 / 3) and cal.p_value(1.5, "q2") == pytest.approx(1 / 3)
    cal.update(3, "q1")
    cal.update(4, "q1")  # FIFO: the oldest (1) leaves
    assert cal.size("q1") == 3 and cal.p_value(1.5, "q1") == pytest.approx(1 / 4)
    with pytest.raises(ConformalError):
        ConformalCalibrator(alpha=1.0)
    assert alpha_for_budget(4, 16) == 0.25
    with pytest.raises(ConformalError):
        alpha_for_budget(20, 16)


# -- the guarantee by simulation ------------------------------------------------------------------------
def _rates(bank_size: int, alpha: float, banks: int = 2000, tests: int = 50, shift: float = 0.0,
           seed: int = 0) -> np.ndarray:
    """Per-bank rejection rate of the conformal rule over fresh exchangeable (or shifted) test scores."""
    rng = np.random.default_rng(seed)
    bank = np.sort(rng.standard_normal((banks, bank_size)), axis=1)
    test = rng.standard_normal((banks, tests)) + shift
    k = np.stack([np.searchsorted(b, t, side="right") for b, t in zip(bank, test)])
    cal = ConformalCalibrator(alpha=alpha)
    return (((k + 1) / (bank_size + 1)) > 1 - cal.alpha + 1e-9).mean(axis=1)


@pytest.mark.parametrize("bank_size,expected", [(99, 0.400), (16, 7 / 17)])
def test_rejection_rate_is_alpha_under_exchangeability(bank_size, expected):
    assert exact_rejection_rate(bank_size, 0.4) == pytest.approx(expected)
    assert 0.4 <= expected < 0.4 + 1 / (bank_size + 1)
    rates = _rates(bank_size, 0.4)
    se = rates.std(ddof=1) / math.sqrt(len(rates))
    assert abs(rates.mean() - expected) < 3 * se
    # the calibrator itself (not only the formula) on one bank reproduces the count rule
    cal = ConformalCalibrator(alpha=0.4).fit(np.random.default_rng(1).standard_normal(bank_size).tolist())
    t = np.random.default_rng(2).standard_normal(20000)
    assert abs(np.mean([cal.reject(x) for x in t]) - expected) < 0.1  # one bank: Beta-spread around it


def test_reference_percentile_rule_matches_and_conditional_spread_is_wider():
    rng = np.random.default_rng(3)
    bank = np.sort(rng.standard_normal((2000, 16)), axis=1)
    test = rng.standard_normal((2000, 50))
    u = np.stack([np.searchsorted(b, t, side="left") for b, t in zip(bank, test)]) / 16  # #{bank < test}/N
    ref = (u >= 0.6).mean(axis=1)
    assert abs(ref.mean() - 7 / 17) < 3 * ref.std(ddof=1) / math.sqrt(len(ref))
    ours = _rates(16, 0.4, seed=3)
    binomial_var = 0.4 * 0.6 / 50  # what the spread would be if every bank had rate alpha
    assert ours.var() > 2 * binomial_var  # conditional on one bank the rate is Beta-like


def test_non_exchangeable_steps_drift_away_from_alpha():
    """Later steps with lower loss (a shifted law) break the guarantee; the runner logs it per turn."""
    drifted = _rates(99, 0.4, shift=-0.5, seed=4)
    se = drifted.std(ddof=1) / math.sqrt(len(drifted))
    assert drifted.mean() < 0.4 - 10 * se and drifted.mean() < 0.25


# -- the scheduler on a fake backend (control flow only) ---------------------------------------------
class CharTokenizer:
    """ids = code points; 3 is the end of text."""

    eos_token_id = 3
    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i != 3)


class Scripted:
    """A fake model: a call stopping at `;` writes one step (the third ends with `#7` and EOS), one
    without a stop string writes to the end; latency per call is `delay(seed)`; scores come from a
    hash of the step."""

    def __init__(self, tok: CharTokenizer, delay, writes: str = "d") -> None:
        self.tok, self.delay, self.writes = tok, delay, writes

    capabilities = Capabilities()
    shape = ModelShape(params=1000, active_params=1000, num_layers=1, hidden_size=8, num_heads=1, num_kv_heads=1,
                       head_dim=8, intermediate_size=8, vocab_size=256)

    @property
    def tokenizer(self):
        return self.tok

    async def start(self): ...
    async def close(self): ...

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        await asyncio.sleep(self.delay(sampling.seed))
        done = self.tok.decode(prompt_ids).count(";")
        tag = f"{self.writes}{(sampling.seed or 0) % 10}"
        text = f"{tag};" if done < 2 else f"{tag}#7"
        ids = self.tok.encode(text) + ([3] if done >= 2 else [])
        if done < 2 and ";" not in sampling.stop:  # no step stop: the model writes to the end
            text, ids = f"{tag};{tag}#7", self.tok.encode(f"{tag};{tag}#7") + [3]
        return Generation([Completion(ids, text, [-0.1] * len(ids), "stop", sampling.seed)], len(prompt_ids))

    def stream(self, prompt_ids, sampling) -> AsyncIterator[StreamDelta]:
        raise NotImplementedError

    async def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> list[float]:
        await asyncio.sleep(0.001)
        h = random.Random(hash((len(prompt_ids), tuple(continuation_ids)))).random()
        return [-h] * len(continuation_ids)


def _ctx(delay_draft, delay_target=lambda s: 0.002, pid: str = "q") -> StrategyContext:
    tok = CharTokenizer()
    prompt = PromptSpec(template="{problem}:", chat=False)
    roles = {"draft": Role("draft", Scripted(tok, delay_draft, "d"), Sampling(), False, prompt),
             "target": Role("target", Scripted(tok, delay_target, "t"), Sampling(), False, prompt)}

    class Hash:
        def extract(self, text):
            return text.split("#")[1] if "#" in text else None

    return StrategyContext(Problem(pid, "x"), roles, Ledger(), Budget(), run_seed=5, extractor=Hash())


def test_async_siblings_do_not_wait_for_a_slow_sample_unlike_sync():
    probe = _ctx(lambda s: 0)
    slow = {probe.seed(f"atts/s0/t{t}/draft") for t in range(6)}
    delay = lambda seed: 0.25 if seed in slow else 0.005  # noqa: E731
    gen = ATTS(mode="async", alpha=0.4, max_turns=6, step_stop=[";"], calibration_samples=8)
    cands = asyncio.run(gen.sample(Problem("q", "x"), _ctx(delay), 4))
    fast_end = max(c.meta["finished"] for c in cands[1:])
    assert cands[0].meta["finished"] > 0.45 and fast_end < 0.1  # the siblings finished during its 1st step
    assert all(c.answer == "7" and c.meta["wait_s"] == 0 for c in cands)

    sync = ATTS(mode="sync", alpha=0.4, max_turns=6, step_stop=[";"])
    cands = asyncio.run(sync.sample(Problem("q", "x"), _ctx(delay), 4))
    assert min(c.meta["finished"] for c in cands) > 0.24  # everyone waits at least for its slow first step
    assert all(c.meta["wait_s"] > 0.2 for c in cands[1:]) and not any(c.iid for c in cands)


def test_async_loop_records_each_turn_and_rejects_at_the_conformal_rule():
    gen = ATTS(mode="async", alpha=0.4, max_turns=6, step_stop=[";"], calibration_samples=16)
    ctx = _ctx(lambda s: 0.001)
    cands = asyncio.run(gen.sample(ctx.problem, ctx, 6))
    cal = gen.calibrator(6)
    for c in cands:
        drafts = [s for s in c.meta["steps"] if s["author"] == "draft"]
        assert [s["turn"] for s in drafts] == list(range(len(drafts)))
        for s in drafts:
            assert s["p"] == pytest.approx(cal.p_value(s["loss"])) and s["rejected"] == cal.reject(s["loss"])
        # continue semantics: a rejected draft step is kept, the target's turn follows it
        for a, b in zip(c.meta["steps"], c.meta["steps"][1:]):
            if a["author"] == "draft" and a["rejected"]:
                assert b["author"] == "target" and b["turn"] == a["turn"]
        assert c.meta["interventions"] == c.meta["rejections"] or c.text.endswith("#7")
    assert {e.role for e in ctx.ledger.entries} == {"draft", "target"}


def _timed(mode: str, m: int, delay) -> tuple[float, list]:
    ctx = _ctx(delay, lambda s: 0.012)
    t0 = time.perf_counter()
    cands = asyncio.run(ATTS(mode=mode, max_turns=6, step_stop=[";"]).sample(ctx.problem, ctx, m))
    return time.perf_counter() - t0, cands


def test_sync_waits_grow_with_m_and_intensity_falls():
    """Lognormal draft latencies, a slower target: the synchronous variant is never faster, its
    per-sample wait grows with m and the arithmetic intensity T_c / T_s falls."""
    rng = random.Random(7)
    lat: dict = {}
    delay = lambda seed: lat.setdefault(seed, 0.004 * rng.lognormvariate(0, 0.5))  # noqa: E731
    seen = {}
    for m in (2, 8):
        sync_wall, cands = _timed("sync", m, delay)
        async_wall, _ = _timed("async", m, delay)
        assert sync_wall >= 0.9 * async_wall
        wait = sum(c.meta["wait_s"] for c in cands)
        busy = sum(c.meta["busy_s"] for c in cands)
        seen[m] = (wait / m, arithmetic_intensity(busy, 0.0, wait))
    assert seen[8][0] > seen[2][0] and seen[8][1] < seen[2][1]


# -- real models --------------------------------------------------------------------------------------
async def test_step_scorer_is_the_mean_nll_of_the_step_tokens_only(toy_hf):
    import torch
    from transformers import AutoModelForCausalLM

    from tts.toy import DEFAULT_MODEL

    tok = toy_hf.tokenizer
    prefix = tok.encode("55-42*3;") + tok.encode("55-42=13;", add_special_tokens=False)
    step = tok.encode("13*3=39#39", add_special_tokens=False)
    r = await StepScorer(toy_hf).score(prefix, step)
    model = AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([prefix + step])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    # token t of the step is predicted at position len(prefix) + t - 1: the boundary token counts once
    manual = -sum(logp[len(prefix) + t - 1, tok_id].item() for t, tok_id in enumerate(step)) / len(step)
    assert r == pytest.approx(manual, abs=1e-4)
    assert await StepScorer(toy_hf).score(prefix, []) == math.inf


def test_transcript_shares_ids_or_re_encodes_for_another_vocabulary():
    from tts.strategies.atts.transcript import Transcript, same_vocab
    from tts.toy.tokenizer import build_tokenizer

    toy, chars = build_tokenizer(), CharTokenizer()
    assert same_vocab(toy, toy) and not same_vocab(toy, chars)
    t = Transcript({"draft": toy.encode("7+8;"), "target": chars.encode("7+8;")},
                   {"draft": lambda s: toy.encode(s, add_special_tokens=False), "target": chars.encode}, shared=False)
    ids = toy.encode("7+8=15#15", add_special_tokens=False)
    added = t.append("draft", ids, "7+8=15#15")
    assert added["draft"] == ids and added["target"] == chars.encode("7+8=15#15")
    t.drop_last(added)
    assert t.completion_ids("draft") == [] and t.completion_ids("target") == []


async def test_toy_atts_recipe_on_hf(tmp_path):
    """The recipe end to end on the toy pair: m candidates voted, every draft step tested at the
    conformal rule, turn-0 rejections near alpha, both roles in the ledger; `replace` drops steps."""
    from tts.records import read_records
    from tts.runner import run_recipe

    from conftest import ROOT

    summary = await run_recipe(ROOT / "recipes" / "toy-atts.yaml", ["strategy.n=6"], tmp_path / "a", limit=12)
    assert summary["ok"] == 12 and set(summary["cost_by_role"]) == {"draft", "target"}
    records = read_records(tmp_path / "a")
    turn0 = [s for r in records for c in r["candidates"] for s in c["meta"]["steps"]
             if s["author"] == "draft" and s["turn"] == 0]
    assert all(len(r["candidates"]) == 6 for r in records) and len(turn0) == 72
    assert all(s["rejected"] == (s["p"] > 0.6 + 1e-9) for s in turn0)
    rate = sum(s["rejected"] for s in turn0) / len(turn0)
    assert abs(rate - 0.4) < 4 * math.sqrt(0.24 / len(turn0)) + 0.05  # small early banks: <= alpha + 1/(N+1)
    assert summary["cost_by_role"]["target"]["completion_tokens"] > 0
    assert summary["accuracy"]["mean"] > 0.2
    for r in records:  # a candidate's eFLOPs are its own calls as the ledger charged them: together they
        total = sum(t["eflops"] for t in r["cost"].values())  # are the problem's cost less calibration
        assert all(c["eflops"] > 0 for c in r["candidates"])
        assert 0.5 * total < sum(c["eflops"] for c in r["candidates"]) <= total * (1 + 1e-9)

    await run_recipe(ROOT / "recipes" / "toy-atts.yaml", ["strategy.n=4", "strategy.generator.on_reject=replace"],
                     tmp_path / "b", limit=6)
    for r in read_records(tmp_path / "b"):
        for c in r["candidates"]:
            steps = c["meta"]["steps"]
            assert c["text"] == "".join(s["text"] for s in steps if not s["dropped"])
            for a, b in zip(steps, steps[1:]):
                if a["author"] == "draft" and a["rejected"]:
                    assert a["dropped"] and b["author"] == "target"
