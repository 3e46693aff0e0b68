"""RWKV-7 state tuning on the hidden-rule pattern task (spec rwkv7-state-tuning.md, test 5), from
scratch: pre-train a tiny RWKV-7 on in-context lookup of random tables, freeze it, then for each of
three hidden permutations compare the zero state, the table given as a prefix (upper reference) and
a tuned initial state (S0 alone learns), on 512 held-out answers each (chance 1/16).

Usage: python benchmarks/rwkv7_state_tuning.py [--pretrain-steps 1200] [--tune-steps 150] [--rules 1234 1 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402


def main() -> None:
    from tts.learn.rwkv7.train import pretrain, tune

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-steps", type=int, default=1200)
    ap.add_argument("--tune-steps", type=int, default=150)
    ap.add_argument("--rules", type=int, nargs="+", default=[1234, 1, 2])
    ap.add_argument("--out", default="benchmarks/results/rwkv7_state_tuning_cpu.json")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    from tts.learn.models import register

    register()
    folder = tempfile.mkdtemp(prefix="rwkv7-pattern-")
    card = pretrain(folder, steps=args.pretrain_steps, progress=False)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    rows = []
    for rule in args.rules:
        _, info = tune(model, rule_seed=rule, steps=args.tune_steps)
        rows.append(info)
        print(json.dumps(info), flush=True)
    print(f"\npre-training: {card['steps']} steps, {card['seconds']} s, {card['parameters']} parameters\n"
          "| rule | zero state | table in prefix | tuned state | tuned / prefix | loss zero → tuned |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['rule_seed']} | {100 * r['zero_state']:.1f}% | {100 * r['table_prefix']:.1f}% | "
              f"{100 * r['tuned_accuracy']:.1f}% | {100 * r['share_of_prefix']:.0f}% | "
              f"{r['zero_state_loss']:.3f} → {r['tuned_loss']:.4f} |")
    write(args.out, {"pretrain": card, "rules": rows})


if __name__ == "__main__":
    main()
