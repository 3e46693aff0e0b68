"""The test-time-learning recipes as a user runs them (`tts run` through the controller), each beside
the baseline a sceptic would pick, with every cost: accuracy with its interval, generated and prefill
tokens, the ledger's prompt tokens (prefills, plus every token of each test-time learning step),
eFLOPs, wall time, and the paired difference on the same problems. Results that hold by
construction of their task are labelled sanity checks.

Usage: python benchmarks/learning_recipes.py [--out benchmarks/results/learning_recipes_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write  # noqa: E402

PLAIN = "strategy.generator={name: sample, role: policy}"
# (name, recipe, baseline overrides, what the comparison shows)
PAIRS = [
    ("perk", "kv-recall-perk.yaml", [PLAIN],
     "evidence: facts never shown in the prompt are recalled from the LoRA written at test time; "
     "baseline: the same base model answering without the adapter (chance 1/64)"),
    ("reroute", "toy-reroute.yaml", [PLAIN],
     "no gain expected: the toy task has no routing shift to recover (the hidden-bias benchmark, "
     "moe_reroute.py, is where rerouting has something to find); baseline: plain greedy decoding"),
    ("state_tuning", "toy-state-tuning.yaml", [PLAIN],
     "sanity check (true by construction): the examples define the hidden rule the state is tuned on; "
     "baseline: the zero initial state"),
]


def run(recipe: str, overrides: list[str], out: Path) -> dict:
    """`tts run RECIPE --set ...` as a subprocess (the product path); the summary and per-problem grades."""
    cmd = [str(Path(sys.executable).with_name("tts")), "run", str(ROOT / "recipes" / recipe), "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    roles = summary["cost_by_role"].values()
    figures = {"accuracy": summary["accuracy"], "problems": summary["problems"],
               "generated_tokens_per_problem": sum(r["completion_tokens"] for r in roles) / summary["problems"],
               "prompt_tokens_per_problem": sum(r["prompt_tokens"] for r in roles) / summary["problems"],
               "eflops_per_problem": summary["eflops_per_problem"], "cost_model": summary["cost_model"],
               "wall_seconds": summary["wall_seconds_this_run"], "cost_by_role": summary["cost_by_role"]}
    grades = {}
    for line in (out / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        grades[r["id"]] = r.get("grade") or 0.0
    return {"command": " ".join(cmd[1:]), "process_wall_s": round(time.perf_counter() - t0, 2),
            "summary": figures, "grades": grades}


def paired(a: dict[str, float], b: dict[str, float], resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of a − b over shared problems with a 95% paired bootstrap interval."""
    import random

    ids = sorted(set(a) & set(b))
    diffs = [a[i] - b[i] for i in ids]
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(resamples))
    return {"problems": len(ids), "mean": sum(diffs) / len(diffs), "lo": means[int(0.025 * resamples)],
            "hi": means[int(0.975 * resamples) - 1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "learning_recipes_cpu.json"))
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="tts-learning-") as tmp:
        for name, recipe, baseline, note in PAIRS:
            method = run(recipe, [], Path(tmp) / name)
            base = run(recipe, baseline, Path(tmp) / f"{name}-baseline")
            rows[name] = {"recipe": f"recipes/{recipe}", "note": note, "method": method, "baseline": base,
                          "difference": paired(method["grades"], base["grades"])}
            m, b, d = method["summary"], base["summary"], rows[name]["difference"]
            print(f"{name:13s} {100 * m['accuracy']['mean']:5.1f}% vs {100 * b['accuracy']['mean']:5.1f}%  "
                  f"diff {100 * d['mean']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]  "
                  f"generated {m['generated_tokens_per_problem']:.0f} vs {b['generated_tokens_per_problem']:.0f}  "
                  f"prompt+learn {m['prompt_tokens_per_problem']:.0f} vs {b['prompt_tokens_per_problem']:.0f}  "
                  f"eFLOPs {m['eflops_per_problem']:.3g} vs {b['eflops_per_problem']:.3g}  "
                  f"wall {m['wall_seconds']:.1f} vs {b['wall_seconds']:.1f} s")
    print(f"wrote {write(args.out, {'rows': rows})}")


if __name__ == "__main__":
    main()
