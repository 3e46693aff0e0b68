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
    gen = PerkGenerator(prefix="doc d{i} :")
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


async def test_bad_settings_and_a_model_that_is_not_perk_fail_in_one_line(toy_hf):
    from tts.budget import Budget
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.prompts import PromptSpec
    from tts.roles import Role
    from tts.strategies.perk import PerkGenerator
    from tts.types import CapabilityError, Problem, Sampling

    with pytest.raises(ValueError, match="`checkpoint:` is gone"):
        PerkGenerator(checkpoint="toy:perk_recall")
    with pytest.raises(ValueError, match="must contain"):
        PerkGenerator(prefix="doc:")
    problem = Problem("p", "1+1=", "2", {"context": ["1+1=2;"]})
    role = Role("policy", toy_hf, Sampling(temperature=0.0, max_tokens=4), False, PromptSpec(template="{problem}"))
    ctx = StrategyContext(problem, {"policy": role}, Ledger(), Budget())
    with pytest.raises(CapabilityError, match="does not serve a PERK checkpoint"):
        await PerkGenerator(prefix="#{i}").sample(problem, ctx, 1)


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
    """One PERK checkpoint loaded once by an hf role: answering on it (the adapted tensors as
    per-request state) and answering on vLLM with the exported adapter give the same tokens; a plain
    request on the same backend sees the base, not the adapter."""
    from tts.backends.hf import HFBackend
    from tts.budget import Budget
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.prompts import PromptSpec
    from tts.roles import Role
    from tts.strategies.perk import PerkGenerator
    from tts.types import Problem, Sampling

    checkpoint = _toy_perk(tmp_path / "perk")
    problem = Problem("p", "12+7=", "19", {"context": ["3+4=7;", "12+7=19;", "9*2=18;"]})
    sampling = Sampling(temperature=0.0, max_tokens=8)
    hf = HFBackend(str(checkpoint), dtype="float32")
    await hf.start()
    try:
        spec = PromptSpec(template="{problem}")
        answers, ledgers = {}, {}
        for name, policy in (("served", vllm_toy_lora), ("in_process", hf)):
            roles = {"policy": Role("policy", policy, sampling, False, spec),
                     "encoder": Role("encoder", hf, sampling, False, spec)}
            ledgers[name] = Ledger()
            ctx = StrategyContext(problem, roles, ledgers[name], Budget())
            gen = PerkGenerator(prefix="#{i}", encoder="encoder" if name == "served" else None)
            (cand,) = await gen.sample(problem, ctx, 1)
            answers[name] = cand.token_ids
            assert cand.eflops > 0 and cand.meta["adapted"]
        assert answers["served"] == answers["in_process"], answers
        assert not vllm_toy_lora._loras  # the per-problem adapter is unloaded
        for name, ledger in ledgers.items():
            assert [(e.role, e.kind) for e in ledger.entries] == [
                ("encoder" if name == "served" else "policy", "learn"), ("policy", "generate")]
        # the adapter is really applied, and only to the perk request: the backend itself serves the base
        prompt = Role("policy", hf, sampling, False, spec).render_problem(problem.problem)
        plain = (await hf.generate(prompt, sampling)).completions[0].token_ids
        assert plain != answers["served"], plain
    finally:
        await hf.close()
