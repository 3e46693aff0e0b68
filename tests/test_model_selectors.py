"""Model-based selectors on tiny real models: generative yes/no reward model, classifier reward
head, generative and head PRMs (each against a direct forward pass), batching, step splitting and
aggregation by hand, and pairwise judging cancelling a planted position bias."""

from __future__ import annotations

import math

import pytest

from tts.budget import Budget
from tts.context import StrategyContext
from tts.ledger import Ledger
from tts.roles import Role
from tts.types import Candidate, CapabilityError, Problem, Sampling

PROBLEM = Problem("q1", "What is 12 + 7?", "19")
TEXTS = ["12 + 7 = 19. The answer is 19.", "The answer is 18.", "Step 1: 12+7=19\n\nStep 2: answer 19",
         "x = 42"]


def cands(texts=TEXTS, pid="q1"):
    return [Candidate(pid, i, "policy", i, [], t) for i, t in enumerate(texts)]


def ctx_for(roles: dict, problem=PROBLEM, ledger=None):
    return StrategyContext(problem, roles, ledger or Ledger(), Budget("tokens"))


def next_token_probs(model_dir, ids):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    return torch.softmax(logits, dim=-1)


async def test_yes_probability_equals_a_direct_forward_pass(hf_backend, tiny_model_dir):
    from tts.verifiers.prompted import NO_WORDS, VERIFY_TEMPLATE, YES_WORDS, render_verdict_prompt, verdict_tokens
    from tts.verifiers.reward_model import GenerativeRewardModel

    role = Role("verifier", hf_backend)
    ledger = Ledger()
    ctx = ctx_for({"verifier": role}, ledger=ledger)
    scores = await GenerativeRewardModel().score(PROBLEM, cands(), ctx)
    bound = ctx.role("verifier")
    yes, no = verdict_tokens(bound, YES_WORDS, NO_WORDS)
    for c, got in zip(cands(), scores):
        ids = render_verdict_prompt(bound, VERIFY_TEMPLATE.format(problem=PROBLEM.problem, solution=c.text))
        probs = next_token_probs(tiny_model_dir, ids)[-1]
        p_yes, p_no = float(probs[yes].sum()), float(probs[no].sum())
        assert got == pytest.approx(p_yes / (p_yes + p_no), rel=1e-4)
    assert {e.role for e in ledger.entries} == {"verifier"} and all(e.kind == "score" for e in ledger.entries)


async def test_generative_scoring_is_batched(hf_backend):
    from tts.verifiers.reward_model import GenerativeRewardModel

    ctx = ctx_for({"verifier": Role("verifier", hf_backend)})
    before = hf_backend.stats()["score_passes"]
    many = cands(TEXTS * 4)
    await GenerativeRewardModel().score(PROBLEM, many, ctx)
    passes = hf_backend.stats()["score_passes"] - before
    calls = len(many) * 8  # 4 yes and 4 no variants at most per candidate
    assert 1 <= passes < len(many) < calls


def test_steps_and_aggregates_by_hand():
    from tts.verifiers.prm import STEP_AGGREGATES, split_steps

    assert split_steps("a\n\nb\n\n\n\nc\n\n") == ["a", "b", "c"]
    assert split_steps("a\n\nb\n\nc\n\nd", max_steps=2) == ["a", "b\n\nc\n\nd"]
    assert split_steps("  \n\n ") == []
    s = [0.9, 0.5, 0.8]
    assert STEP_AGGREGATES["min"](s) == 0.5 and STEP_AGGREGATES["last"](s) == 0.8
    assert STEP_AGGREGATES["product"](s) == pytest.approx(0.36)
    assert STEP_AGGREGATES["mean"](s) == pytest.approx(2.2 / 3)


@pytest.mark.parametrize("bad", [None, "-"])
async def test_generative_prm_equals_a_direct_forward_pass(hf_backend, tiny_model_dir, bad):
    from tts.verifiers.prm import GenerativePRM, split_steps
    from tts.verifiers.prompted import first_tokens, render_verdict_prompt

    prm = GenerativePRM(role="prm", separator="\n\n", step_tag="\n", good="+", bad=bad, aggregate="min")
    ctx = ctx_for({"prm": Role("prm", hf_backend)})
    text = TEXTS[2]
    steps = split_steps(text)
    got = await prm.score_steps(PROBLEM, steps, ctx)
    bound = ctx.role("prm")
    good = first_tokens(bound, ["+"])[0]
    ids = render_verdict_prompt(bound, PROBLEM.problem, answer_prefix="")
    want = []
    for step in steps:
        ids = ids + bound.encode(step + "\n")
        probs = next_token_probs(tiny_model_dir, ids)[-1]
        if bad is None:
            want.append(float(probs[good]))
        else:
            b = first_tokens(bound, ["-"])[0]
            want.append(float(probs[good] / (probs[good] + probs[b])))
        ids = ids + [good]
    assert got == pytest.approx(want, rel=1e-3)
    (score,) = await prm.score(PROBLEM, cands([text]), ctx)
    assert score == pytest.approx(min(want), rel=1e-3)


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory):
    from tinymodel import build_tiny_head

    return build_tiny_head(tmp_path_factory.mktemp("rm"), "sequence", 1)


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    from tinymodel import build_tiny_head

    return build_tiny_head(tmp_path_factory.mktemp("prm"), "token", 2)


async def test_classifier_reward_model_matches_the_head_and_batches(rm_dir):
    import asyncio

    import torch
    from transformers import AutoModelForSequenceClassification

    from tts.backends.hf_head import HFHeadBackend
    from tts.verifiers.reward_model import ClassifierRewardModel

    head = HFHeadBackend(str(rm_dir), batch_size=64, batch_wait_ms=20)
    await head.start()
    roles = {"reward_model": Role("reward_model", head)}
    sel = ClassifierRewardModel()  # role: reward_model
    ledger = Ledger()
    problems = [Problem(f"q{i}", f"What is {i} + 7?") for i in range(3)]
    results = await asyncio.gather(*(sel.score(p, cands(pid=p.id), ctx_for(roles, p, ledger)) for p in problems))
    assert head.forward_passes < 3 * len(TEXTS)  # candidates of all problems share passes
    model = AutoModelForSequenceClassification.from_pretrained(rm_dir).eval()
    for p, scores in zip(problems, results):
        for c, got in zip(cands(pid=p.id), scores):
            ids = sel.encode(head.tokenizer, p.problem, c.text)
            with torch.no_grad():
                want = 1 / (1 + math.exp(-float(model(torch.tensor([ids])).logits[0, 0])))
            assert got == pytest.approx(want, abs=1e-4)
    entries = [e for e in ledger.entries if e.role == "reward_model"]
    assert len(entries) == 3 * len(TEXTS) and all(e.eflops > 0 and e.kind == "score" for e in entries)
    await head.close()


async def test_head_prm_reads_label_one_at_step_tokens(prm_dir):
    import torch
    from transformers import AutoModelForTokenClassification

    from tts.backends.hf_head import HFHeadBackend
    from tts.verifiers.prm import HeadPRM

    head = HFHeadBackend(str(prm_dir), head="token")
    await head.start()
    roles = {"prm": Role("prm", head)}
    prm = HeadPRM(step_token="<|end|>", aggregate="product")
    steps = ["Step 1: 12+7=19", "Step 2: answer 19"]
    got = await prm.score_steps(PROBLEM, steps, ctx_for(roles))
    ids, step_id = prm.encode(head.tokenizer, PROBLEM.problem, steps)
    model = AutoModelForTokenClassification.from_pretrained(prm_dir).eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)[:, 1]
    want = [float(probs[i]) for i, t in enumerate(ids) if t == step_id]
    assert len(want) >= 2 and got == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match="not a single token"):
        await HeadPRM(step_token="<no such token>").score_steps(PROBLEM, steps, ctx_for(roles))
    with pytest.raises(CapabilityError, match="lacks generation"):  # a head is no policy
        await head.generate([1, 2], Sampling())


def test_bad_selector_settings():
    from tts.verifiers.judge import Judge
    from tts.verifiers.prm import GenerativePRM
    from tts.verifiers.reward_model import GenerativeRewardModel

    with pytest.raises(ValueError, match="aggregate"):
        GenerativePRM(aggregate="max")
    with pytest.raises(ValueError, match="mode"):
        Judge(mode="listwise")
    with pytest.raises(ValueError, match="template must contain"):
        GenerativeRewardModel(template="no fields")


class _BiasedJudgeRole:
    """A fake judge (pure unit test of control flow): P(first slot wins) = sigmoid(2 + q(first) −
    q(second)), with quality q = the number of '+' in a solution; the +2 is a planted bias."""

    class backend:  # noqa: N801
        class capabilities:  # noqa: N801
            scoring = True

    uses_chat = False
    name = "judge"

    class tokenizer:  # noqa: N801
        @staticmethod
        def encode(text, add_special_tokens=True):
            return [ord(ch) for ch in text]

    def encode(self, text):
        return [ord(ch) for ch in text]

    async def score(self, prompt_ids, continuation):
        text = "".join(map(chr, prompt_ids))
        a = text.split("Solution A:")[1].split("Solution B:")[0]
        b = text.split("Solution B:")[1]
        p_a = 1 / (1 + math.exp(-(2 + a.count("+") - b.count("+"))))
        tok = chr(continuation[0]).strip()
        return [math.log(p_a if tok == "A" else 1 - p_a)]


class _Ctx:
    import random
    rng = random.Random(0)

    def role(self, name):
        return _BiasedJudgeRole()


async def test_pairwise_judging_cancels_position_bias():
    from tts.verifiers.judge import Judge

    judge = Judge(mode="pairwise")
    same = cands(["x", "y"])
    assert await judge.prefer(_BiasedJudgeRole(), PROBLEM, same[0], same[1]) == pytest.approx(0.5)
    good, bad = cands(["++", ""])
    assert await judge.prefer(_BiasedJudgeRole(), PROBLEM, good, bad) > 0.5
    assert await judge.prefer(_BiasedJudgeRole(), PROBLEM, bad, good) < 0.5
    ranked = await judge.score(PROBLEM, cands(["", "+", "+++", "++"]), _Ctx())
    assert sorted(range(4), key=lambda i: ranked[i]) == [0, 1, 3, 2]
    t = await Judge(mode="pairwise", pairing="tournament").score(PROBLEM, cands(["", "+", "+++", "++"]), _Ctx())
    assert t[2] == 1.0 and max(t[0], t[1], t[3]) < 1.0


async def test_pointwise_judge_parses_text_when_it_cannot_score(hf_backend):
    from tts.verifiers.judge import Judge
    from tts.verifiers.prompted import parse_verdict

    assert parse_verdict("Yes, it is right") == 1.0 and parse_verdict("incorrect.") == 0.0
    assert parse_verdict("Score: 7/10") == pytest.approx(0.7) and parse_verdict("hmm" * 10_000) is None
    ctx = ctx_for({"judge": Role("judge", hf_backend, Sampling(max_tokens=8))})
    scores = await Judge(use_logprobs=False, max_tokens=8).score(PROBLEM, cands(), ctx)
    assert all(s in (0.0, 0.5, 1.0) for s in scores)
    assert {e.role for e in ctx.ledger.entries} == {"judge"}


async def test_vllm_pooling_heads_match_transformers(tmp_path):
    """A `vllm` role with `head:` serves reward and PRM heads with vLLM's pooling runner: the same
    scores as the `hf_head` backend; a selector still naming its own model is told where it went."""
    pytest.importorskip("vllm")
    from tinymodel import build_tiny_head
    from tts.backends.hf_head import HFHeadBackend
    from tts.backends.vllm import VLLMBackend
    from tts.verifiers.prm import HeadPRM
    from tts.verifiers.reward_model import ClassifierRewardModel

    async def scores(backend, selector, role, *args):
        ctx = ctx_for({role: Role(role, backend)})
        await backend.start()
        try:
            if isinstance(selector, HeadPRM):
                return await selector.score_steps(PROBLEM, *args, ctx)
            return await selector.score(PROBLEM, cands(), ctx)
        finally:
            await backend.close()

    rm = build_tiny_head(tmp_path / "rm", "sequence", 1, hidden=128)
    sel = ClassifierRewardModel(role="rm")
    want = await scores(HFHeadBackend(str(rm)), sel, "rm")
    via_vllm = VLLMBackend(str(rm), head="sequence", dtype="float32", max_model_len=256)
    assert via_vllm.capabilities.classify and not via_vllm.capabilities.generation
    assert await scores(via_vllm, sel, "rm") == pytest.approx(want, abs=1e-4)
    prm = build_tiny_head(tmp_path / "prm", "token", 2, hidden=128)
    steps = ["Step 1: 12+7=19", "Step 2: answer 19"]
    step_sel = HeadPRM(step_token="<|end|>")
    want = await scores(HFHeadBackend(str(prm), head="token"), step_sel, "prm", steps)
    got = await scores(VLLMBackend(str(prm), head="token", dtype="float32", max_model_len=256), step_sel, "prm", steps)
    assert got == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match=r"reward_model: `model:` moved to a recipe role"):
        ClassifierRewardModel(model=str(rm))
