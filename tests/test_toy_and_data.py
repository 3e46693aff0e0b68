"""The toy task, its tokenizer and trainer, and the dataset loaders' errors."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from tts.evals.benchmarks import Benchmark, ToyArithmetic
from tts.evals.datasets import DatasetError, JsonlDataset
from tts.toy import DEFAULT_MODEL
from tts.toy.task import TEST_SEED, TEST_SIZE, problems, random_problem
from tts.types import Sampling


def test_toy_chain_is_left_to_right_and_in_range():
    import random

    rng = random.Random(0)
    for _ in range(500):
        p = random_problem(rng, n_ops=3)
        for a, op, b, r in p.steps():
            assert 0 <= r <= 999 and (op != "*" or 2 <= b <= 9)
        assert p.chain.endswith(f"#{p.answer}") and p.chain.count(";") == 2


def test_held_out_set_is_stable_and_distinct():
    a = problems(TEST_SIZE, TEST_SEED)
    assert [p.text for p in a] == [p.text for p in problems(TEST_SIZE, TEST_SEED)]
    assert len({p.text for p in a}) == TEST_SIZE
    ids = [p.id for p in ToyArithmetic(count=300).load()]
    assert len(set(ids)) == 300 and ids[0] == "toy2-0000"


def test_toy_tokenizer_is_character_level_through_auto_tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    ids = tok.encode("18+36-30;")
    assert len(tok) == 19 and ids[0] == tok.bos_token_id and len(ids) == 10
    assert tok.decode(ids, skip_special_tokens=True) == "18+36-30;"


def test_toy_trainer_runs_saves_and_loads(tmp_path):
    from tts.backends.hf import HFBackend
    from tts.toy.train import train

    card = train(tmp_path / "m", size="small", steps=3, batch=8, log_every=0)
    assert card["steps"] == 3 and (tmp_path / "m" / "model.safetensors").exists()

    async def sample():
        backend = HFBackend(str(tmp_path / "m"))
        await backend.start()
        gen = await backend.generate(backend.tokenizer.encode("1+2;"), Sampling(n=2, max_tokens=5, seed=0))
        await backend.close()
        return gen

    assert len(asyncio.run(sample()).completions) == 2
    with pytest.raises(ValueError, match="unknown toy size"):
        train(tmp_path / "x", size="huge", steps=1)


@pytest.mark.slow
def test_retraining_the_default_toy_model_lands_in_the_target_range(tmp_path):
    """Slow (~2-3 min): retrain with the committed settings; greedy accuracy on 300 held-out problems."""
    import torch

    from tts.toy.train import train
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train(tmp_path / "m", steps=1000, seed=0, log_every=0)
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    right = 0
    for p in ToyArithmetic(count=300).load():
        ids = torch.tensor([tok.encode(p.problem + ";")])
        out = model.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=tok.eos_token_id)
        right += tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).endswith(f"#{p.answer}")
    assert 0.5 <= right / 300 <= 0.95


def test_dataset_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="not found"):
        JsonlDataset(str(tmp_path / "none.jsonl")).load()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "problem": "x"}\n{oops\n')
    with pytest.raises(DatasetError, match="bad.jsonl:2"):
        JsonlDataset(str(bad)).load()
    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps({"id": 1, "problem": "x"}) + "\n" + json.dumps({"id": 1, "problem": "y"}) + "\n")
    with pytest.raises(DatasetError, match="duplicate id"):
        JsonlDataset(str(dup)).load()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TTS_DATA_DIR", raising=False)
    with pytest.raises(DatasetError) as info:
        Benchmark("math500", source="hub").load()
    assert "TTS_DATA_DIR" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="unknown benchmark"):
        Benchmark("mmlu")


@pytest.mark.skipif(not os.environ.get("TTS_DATA_DIR"), reason="TTS_DATA_DIR not set")
def test_benchmarks_load_with_stable_ids():
    counts = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "gsm8k": 1319}
    for name, count in counts.items():
        ps = Benchmark(name).load()
        assert len(ps) == count and len({p.id for p in ps}) == count and all(p.answer for p in ps)
    assert len(Benchmark("math500", level=5).load()) < 500
