"""Weighted best-of-N with a reward model that is informative by construction beats majority vote.

The reward model is made in the test: the toy LM's weights under a fresh scalar head, trained for
about 25 s to tell correct toy samples from wrong ones — on *other samples of the same problems*
(quickstart problems, run seed 1), so it knows something about these problems by construction.
It is then the `reward_model` selector of the quickstart run (seed 0: fresh samples). This checks
that weighted voting turns an informative selector into accuracy through the whole pipeline; it
does not claim a toy RM generalises to unseen problems (trained on other problems, the same recipe
reaches an AUC of only about 0.6 on the toy, and weighted voting then ties majority).
Paired bootstrap over problems: weighted@16 − majority@16 > 0."""

from __future__ import annotations

import random

import pytest

from tts.evals.metrics import aggregator_at_k, paired_bootstrap
from tts.evals.summary import candidates_of
from tts.records import read_records
from tts.runner import run_recipe
from conftest import ROOT

QUICK = str(ROOT / "recipes" / "quickstart.yaml")


def train_reward_model(records, problems, out, steps: int = 1000, seconds_cap: float = 150.0):
    import time

    import torch
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    from tts.toy import WEIGHTS

    tok = AutoTokenizer.from_pretrained(WEIGHTS / "default")
    model = LlamaForSequenceClassification.from_pretrained(WEIGHTS / "default", num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    data = [(tok.encode(f"{problems[r['id']]}\n\n{c['text']}", add_special_tokens=True), float(c["grade"]))
            for r in records for c in r["candidates"]]
    pos = [d for d in data if d[1] > 0]
    neg = [d for d in data if d[1] == 0]
    rng = random.Random(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / steps)  # linear decay: stabler
    torch.manual_seed(0)
    model.train()
    t0 = time.time()
    for step in range(steps):
        batch = rng.sample(pos, 16) + rng.sample(neg, 16)  # balanced batches
        width = max(len(x) for x, _ in batch)
        ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x, _ in batch])
        mask = (ids != tok.pad_token_id).long()
        logits = model(input_ids=ids, attention_mask=mask).logits[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([y for _, y in batch]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if time.time() - t0 > seconds_cap:
            break
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, float(loss.detach()), step + 1


@pytest.mark.slow  # about 70 s: 50 s of training, a must-win comparison (figures in the closing note)
async def test_weighted_best_of_n_with_a_trained_reward_model_beats_majority(tmp_path):
    from tts.evals.benchmarks import ToyArithmetic
    from tts.strategies.aggregators import Majority, Weighted

    problems = {p.id: p.problem for p in ToyArithmetic(count=300).load()}
    await run_recipe(QUICK, ["seed=1", "strategy.n=16", "sweep.n=[1]", "sweep.aggregators=[]", "selectors=[]"],
                     tmp_path / "train")
    records = [r for r in read_records(tmp_path / "train") if r["status"] == "ok"]
    rm_dir, loss, steps = train_reward_model(records, problems, tmp_path / "rm")
    print(f"reward model: {steps} steps, last batch loss {loss:.3f}")

    await run_recipe(QUICK, [f"roles.rm={{backend: hf_head, model: '{rm_dir}', engine: {{batch_size: 64}}}}",
                             "selectors=[{name: reward_model, role: rm}]",
                             "sweep.aggregators=[majority, {name: weighted, selector: reward_model}]"],
                     tmp_path / "eval")
    evaluated = [r for r in read_records(tmp_path / "eval") if r["status"] == "ok"]
    assert len(evaluated) == 300
    rng = random.Random(0)
    weighted = Weighted("reward_model")
    maj = [aggregator_at_k(Majority(), candidates_of(r), 16, 1, rng) for r in evaluated]
    wtd = [aggregator_at_k(weighted, candidates_of(r), 16, 1, rng) for r in evaluated]
    mean, lo, hi = paired_bootstrap(wtd, maj)
    print(f"weighted@16 {sum(wtd) / 300:.3f} vs majority@16 {sum(maj) / 300:.3f}: "
          f"{100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    assert lo > 0
