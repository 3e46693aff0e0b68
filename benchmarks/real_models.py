"""Real pretrained models on real workloads, through the product path (`tts run RECIPE`), with the
scaling table (majority, confidence-weighted and best-of-N by N, with intervals), every cost and
the ARISE score over N. Whatever the numbers are, they are published (docs/results.md).

Usage: python benchmarks/real_models.py [--only NAME] [--out benchmarks/results/real_models_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write  # noqa: E402

# name -> (recipe, overrides, problems)
RUNS = {
    "gsm8k_smollm2_vllm": ("gsm8k-smollm2-cpu.yaml", [], 100),
}


def tts(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("tts")), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return proc


def measure(name: str, recipe: str, overrides: list[str], limit: int, folder: Path) -> dict:
    out = folder / name
    args = ["run", str(ROOT / "recipes" / recipe), "--out", str(out), "--limit", str(limit)]
    for o in overrides:
        args += ["--set", o]
    t0 = time.perf_counter()
    proc = tts(*args)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    roles = summary["cost_by_role"].values()
    problems = summary["problems"]
    return {"command": "tts " + " ".join(args), "process_wall_s": round(wall, 1), "problems": problems,
            "ok": summary["ok"], "accuracy": summary["accuracy"], "sweep": summary.get("sweep"),
            "generated_tokens_per_problem": sum(r["completion_tokens"] for r in roles) / problems,
            "prompt_tokens_per_problem": sum(r["prompt_tokens"] for r in roles) / problems,
            "eflops_per_problem": summary["eflops_per_problem"], "cost_model": summary["cost_model"],
            "wall_seconds": summary["wall_seconds_this_run"], "printed": proc.stdout}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(RUNS))
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "real-models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_models_cpu.json"))
    args = ap.parse_args()
    folder = Path(args.runs_dir)
    rows = {}
    for name, (recipe, overrides, limit) in RUNS.items():
        if args.only and name != args.only:
            continue
        rows[name] = measure(name, recipe, overrides, limit, folder)
        print(rows[name]["printed"])
    print(f"wrote {write(args.out, {'runs': rows})}")


if __name__ == "__main__":
    main()
