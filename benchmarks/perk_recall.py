"""PERK on the synthetic key-value recall task (spec perk.md, test 6): meta-train with
`tts.learn.train_perk` (the base: a tiny GPT-2 pre-trained on the format), keep the meta-parameters
with the best validation accuracy, then score 500 held-out episodes (fixed seed): (a) no inner loop
(the meta-learned φ0 alone — the leak check, must sit near chance), (b) in-context (facts in the
prompt, the base as is), (c) PERK. Chance is 1/64.

Usage: python benchmarks/perk_recall.py [--steps 1400] [--episodes 500] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402


def main() -> None:
    import torch

    from tts.learn import recall_task as task
    from tts.learn.perk import PERKConfig
    from tts.learn.train_perk import TrainSettings, load, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1400)
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--weighted", action="store_true", help="the reference's token-weighted inner loss")
    ap.add_argument("--out", default=None, help="checkpoint folder (default: a temporary one)")
    ap.add_argument("--results", default=None, help="results file (default: benchmark.json in the checkpoint folder)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="perk-recall-"))
    config = PERKConfig(rank=16, alpha=16.0, target_modules=("c_attn", "c_proj", "c_fc"), inner_steps=4, unroll_from=2,
                        inner_lr=2e-2, weighted=args.weighted, weight_hidden=32, positive_lrs=True)
    t0 = time.perf_counter()
    train(TrainSettings(str(out), steps=args.steps, outer_lr=3e-4, save_every=args.steps), config)
    perk = load(out)
    card = json.loads((out / "card.json").read_text())
    base = perk.model.base_model.model
    rng = random.Random(20261127)
    held = [task.episode(rng, shuffle_ids=False) for _ in range(args.episodes)]
    none = perk_acc = context = 0.0
    with torch.no_grad():
        for ep in held:
            q, ic = ep.questions(), ep.in_context()
            none += task.answer_accuracy(perk.answer_logits(perk.initial(), q), q)
            with perk.model.disable_adapter():
                context += task.answer_accuracy(base(input_ids=ic.input_ids, attention_mask=ic.attention_mask).logits, ic)
    for ep in held:
        q = ep.questions()
        perk_acc += task.answer_accuracy(perk.answer_logits(perk.encode(ep.context()), q), q)
    n = len(held)
    rows = {"no_inner_loop": none / n, "in_context": context / n, "perk": perk_acc / n, "chance": task.CHANCE,
            "best_step": card.get("best_step"), "best_val_accuracy": card.get("best_val_accuracy"),
            "seconds": time.perf_counter() - t0, "weighted": args.weighted, "steps": args.steps}
    print("| method | accuracy | × chance |\n| --- | --- | --- |")
    for key in ("no_inner_loop", "in_context", "perk"):
        print(f"| {key} | {100 * rows[key]:.2f}% | {rows[key] / task.CHANCE:.1f} |")
    print(f"best validation step {rows['best_step']} of {args.steps}; {rows['seconds']:.0f} s")
    print(f"wrote {write(args.results or out / 'benchmark.json', rows)}")


if __name__ == "__main__":
    main()
