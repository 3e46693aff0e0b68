"""LaCT on multi-query associative recall (spec lact.md, test 7; issue 11): the same tiny LM (2 layers,
hidden 64, window 32, chunk 64) trained with sliding-window attention + LaCT and with sliding-window
attention alone (its MLP widened to the same parameter count), 3 seeds, scored on 8,192 held-out
answers each — overall and for pairs outside the attention window (chance 1/64). Then ablations on
seed 0: Muon on, momentum off, weight norm off.

Usage: python benchmarks/lact_recall.py [--steps 3000] [--ablation-steps 1500] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402


def matched_mlp(base) -> int:
    """The SWA-only MLP width whose model has (about) as many parameters as the LaCT one."""
    from tts.learn.lact.model import LaCTForCausalLM
    from tts.learn.lact.train import config

    lact = sum(p.numel() for p in LaCTForCausalLM(config(base)).parameters())
    plain = replace(base, use_lact=False)
    per_unit = 3 * base.hidden * base.layers  # gate, up, down rows per extra MLP unit
    width = 4 * base.hidden
    return width + round((lact - sum(p.numel() for p in LaCTForCausalLM(config(replace(plain, intermediate_size=width))).parameters())) / per_unit)


def main() -> None:
    from tts.learn.lact.train import LaCTTrain, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--ablation-steps", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="benchmarks/results/lact_recall_cpu.json")
    args = ap.parse_args()
    base = LaCTTrain(steps=args.steps, base_lr=0.1)
    width = matched_mlp(base)
    rows = []
    for seed in args.seeds:
        for name, s in (("swa+lact", replace(base, seed=seed)),
                        ("swa only", replace(base, seed=seed, use_lact=False, intermediate_size=width))):
            _, card = train(s, progress=False)
            rows.append({"model": name, "seed": seed, "parameters": card["parameters"], **card["eval"],
                         "seconds": card["seconds"]})
            print(json.dumps(rows[-1]), flush=True)
    ablations = []
    short = replace(base, steps=args.ablation_steps, seed=args.seeds[0])
    for name, s in (("lact (reference for ablations)", short), ("muon on", replace(short, use_muon=True)),
                    ("momentum off", replace(short, use_momentum=False)),
                    ("weight norm off", replace(short, weight_norm=False))):
        _, card = train(s, progress=False)
        ablations.append({"variant": name, **card["eval"], "final_loss": card["final_loss"]})
        print(json.dumps(ablations[-1]), flush=True)
    print("\n| model | seed | parameters | all answers | outside the window |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['seed']} | {r['parameters']} | {100 * r['all']:.1f}% | {100 * r['outside']:.1f}% |")
    print(f"\nchance {100 / 64:.2f}%; ablations ({args.ablation_steps} steps, seed {args.seeds[0]}):")
    for a in ablations:
        print(f"- {a['variant']}: outside {100 * a['outside']:.1f}%, final loss {a['final_loss']:.3f}")
    write(args.out, {"runs": rows, "ablations": ablations, "steps": args.steps})


if __name__ == "__main__":
    main()
