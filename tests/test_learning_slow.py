"""The must-win test-time-learning benchmarks as `slow` tests (minutes of CPU training each; run with
`scripts/test.sh -m slow`; the figures of the full benchmark scripts are in the closing notes)."""

from __future__ import annotations


import pytest


@pytest.mark.slow  # ~4 min: two models trained 3,000 steps
def test_lact_beats_window_attention_outside_the_window():
    from dataclasses import replace

    from tts.learn.lact.recall import CHANCE
    from tts.learn.lact.train import LaCTTrain, train

    base = LaCTTrain(steps=3000, base_lr=0.1, seed=1)
    _, lact = train(base, progress=False)
    _, swa = train(replace(base, use_lact=False, intermediate_size=293), progress=False)  # same parameter count
    assert abs(lact["parameters"] - swa["parameters"]) < 0.01 * lact["parameters"]
    assert lact["eval"]["outside_answers"] >= 1000
    assert lact["eval"]["outside"] - swa["eval"]["outside"] >= 0.30, (lact["eval"], swa["eval"])
    assert swa["eval"]["outside"] <= 2 * CHANCE


@pytest.mark.slow  # ~70 s: pre-training from scratch, then state tuning
def test_state_tuning_reaches_the_in_prefix_accuracy(tmp_path):
    from transformers import AutoModelForCausalLM

    from tts.learn.models import register
    from tts.learn.rwkv7.train import pretrain, tune

    register()
    pretrain(tmp_path / "m", steps=1200, seed=3, progress=False)  # a model other than the packaged one
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    _, info = tune(model, rule_seed=7, steps=150)
    assert info["tuned_accuracy"] >= 0.8 * info["table_prefix"] and info["tuned_accuracy"] >= 8 * info["chance"], info
