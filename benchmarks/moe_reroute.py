"""The hidden-router-bias task (spec: moe-rerouting.md, test 6) at full size: 50 sequences of 256
tokens sampled from a tiny MoE with a hidden router offset δ*; δ fitted on the first 128 tokens
(Adam, lr 0.2, step count by two-fold cross-validation on those tokens), scored by teacher-forced
cross-entropy on the last 128 against δ = 0 and the oracle δ*; and the control: sequences sampled
without δ*. One run per model family.

Usage: python benchmarks/moe_reroute.py [--count 50] [--kinds olmoe,qwen2_moe,mixtral] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402


def main() -> None:
    from tts.learn.moe_task import hidden_offsets, run_task, tiny_moe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--kinds", default="olmoe,qwen2_moe,mixtral")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    print("| model | CE δ=0 | CE rerouted | CE oracle | improved | gap closed | control Δ mean CE | steps chosen (median) | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in args.kinds.split(","):
        t0 = time.perf_counter()
        model = tiny_moe(kind)
        shifted = run_task(model, hidden_offsets(model), count=args.count)
        control = run_task(model, {}, count=args.count, seed=1)
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        row = {"model": kind, "ce_zero": mean(shifted.ce_zero), "ce_adapted": mean(shifted.ce_adapted),
               "ce_oracle": mean(shifted.ce_oracle), "improved": shifted.improved, "gap_closed": shifted.gap_closed,
               "control_change": control.relative_change, "steps_median": sorted(shifted.steps)[len(shifted.steps) // 2],
               "control_steps_nonzero": sum(1 for s in control.steps if s), "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"| {kind} | {row['ce_zero']:.3f} | {row['ce_adapted']:.3f} | {row['ce_oracle']:.3f} | "
              f"{100 * row['improved']:.0f}% | {100 * row['gap_closed']:.1f}% | {100 * row['control_change']:+.2f}% | "
              f"{row['steps_median']} | {row['seconds']:.0f} |", flush=True)
    if args.out:
        write(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
