"""The `perk` generator: the shipped recipe on the committed tiny checkpoint (the CI short version of
the recall benchmark), the text format equals the training format, one encoding per context, clear
errors, and answers served through vLLM with the adapted LoRA equal the in-process answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tts.records import read_records
from tts.runner import run_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "kv-recall-perk.yaml"


async def test_recipe_recalls_facts_the_prompt_never_shows(tmp_path):
    """80 questions (10 episodes): PERK ≥ 4× chance; the same questions without the inner loop's
    adapter (plain sampling, no context) ≤ 2× chance — the leak check."""
    from tts.learn.recall_task import CHANCE

    perk = await run_recipe(RECIPE, ["dataset.episodes=10"], tmp_path / "perk")
    plain = await run_recipe(RECIPE, ["dataset.episodes=10", "strategy.generator={name: sample, role: policy}"],
                             tmp_path / "plain")
    assert perk["ok"] == plain["ok"] == 80
    acc, base = perk["accuracy"]["mean"], plain["accuracy"]["mean"]
    assert acc >= 4 * CHANCE, acc
    assert base <= 2 * CHANCE, base
    records = read_records(tmp_path / "perk")
    learned = [r for r in records if r["cost"]["policy"]["calls"] == 2]  # learn + generate
    assert len(learned) == 10  # one encoding per episode, shared by its 8 questions
    assert all(r["candidates"][0]["meta"]["adapted"] for r in records)


def test_text_segments_equal_the_training_format():
    from tts.learn import recall_task as task
    from tts.strategies.perk import PerkGenerator
    from tts.types import Problem
    from tts.evals.learning_tasks import KVRecall

    class Role:  # the generator only encodes text with the role's tokenizer
        tokenizer = task.tokenizer()

        def encode(self, text):
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    problems = KVRecall(episodes=1, seed=3).load()
    gen = PerkGenerator("toy:perk_recall", prefix="doc d{i} :")
    rows = gen.segments(problems[0], Role())
    ep = task.episode(random.Random(3), shuffle_ids=False)
    want = ep.context()
    for i, (ids, labels) in enumerate(rows):
        n = int(want.attention_mask[i].sum())
        assert ids == want.input_ids[i, :n].tolist() and labels == want.labels[i, :n].tolist()
    q = ep.questions()
    assert Role().encode(problems[0].problem) == q.input_ids[0, :4].tolist()
    assert problems[0].answer == task.text([ep.facts[0][1]])
    with pytest.raises(ValueError, match="no meta\\['context'\\]"):
        gen.segments(Problem("x", "doc ? : k1"), Role())


def test_bad_checkpoint_and_prefix_fail_in_one_line(tmp_path):
    from tts.strategies.perk import PerkGenerator

    with pytest.raises(ValueError, match="not a PERK checkpoint"):
        PerkGenerator(str(tmp_path))
    with pytest.raises(ValueError, match="must contain"):
        PerkGenerator("toy:perk_recall", prefix="doc:")


def _toy_perk(folder: Path) -> Path:
    """A PERK around the toy Llama (which vLLM serves LoRA for), saved as a checkpoint; φ0 and the
    rates as initialised, so encoding a context moves the adapter away from zero."""
    import torch
    from transformers import AutoModelForCausalLM

    from tts.learn.perk import PERK, PERKConfig
    from tts.toy import DEFAULT_MODEL

    torch.manual_seed(0)
    config = PERKConfig(rank=8, alpha=64.0, target_modules=("q_proj", "v_proj", "o_proj"), inner_steps=3,
                        unroll_from=3, inner_lr=0.05, weighted=False, weight_hidden=8)
    perk = PERK(AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL), config)
    folder.mkdir()
    torch.save(perk.state_dict(), folder / "perk.pt")
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in config.__dict__.items()}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "card.json").write_text(json.dumps({"base": str(DEFAULT_MODEL)}))
    return folder


async def test_vllm_serves_the_adapted_lora_like_the_in_process_answer(vllm_toy_lora, tmp_path):
    from tts.backends.hf import HFBackend
    from tts.budget import Budget
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.prompts import PromptSpec
    from tts.roles import Role
    from tts.strategies.perk import PerkGenerator, _perk, decode
    from tts.toy import DEFAULT_MODEL
    from tts.types import Problem, Sampling

    checkpoint = _toy_perk(tmp_path / "perk")
    problem = Problem("p", "12+7=", "19", {"context": ["3+4=7;", "12+7=19;", "9*2=18;"]})
    sampling = Sampling(temperature=0.0, max_tokens=8)
    hf = HFBackend(str(DEFAULT_MODEL), dtype="float32")
    await hf.start()
    try:
        answers, ledgers = {}, {}
        for name, backend in (("served", vllm_toy_lora), ("in_process", hf)):
            role = Role("policy", backend, sampling, False, PromptSpec(template="{problem}"))
            ledgers[name] = Ledger()
            ctx = StrategyContext(problem, {"policy": role}, ledgers[name], Budget())
            gen = PerkGenerator(str(checkpoint), prefix="#{i}", device="cpu")
            (cand,) = await gen.sample(problem, ctx, 1)
            answers[name] = cand.token_ids
        assert answers["served"] == answers["in_process"], answers
        assert not vllm_toy_lora._loras  # the per-problem adapter is unloaded
        for ledger in ledgers.values():
            assert [e.kind for e in ledger.entries][0] == "learn"
        # the adapter is really applied: the base (φ0, B = 0) answers differently
        perk, _ = _perk(str(checkpoint), "cpu")
        prompt = Role("policy", hf, sampling, False, PromptSpec(template="{problem}")).render_problem(problem.problem)
        plain, _ = decode(perk, perk.initial(), prompt, Sampling(temperature=0.0, max_tokens=8), 0,
                          hf.tokenizer.eos_token_id, "cpu")
        assert plain != answers["served"], plain
    finally:
        await hf.close()
