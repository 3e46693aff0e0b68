"""Real pretrained models on real workloads, through the product path (`tts run RECIPE`), with the
scaling table (majority, confidence-weighted and best-of-N by N, with intervals), every cost, the
ARISE score of each model over N and `tts plan` on the runs. Whatever the numbers are, they are
published (docs/results.md). Each group writes its own results file.

Usage: python benchmarks/real_models.py GROUP [--runs-dir runs/real-models]
  groups: gsm8k (SmolLM2, vLLM), arith (SmolLM2 and Gemma-3 on vLLM, SmolLM2 on hf; ARISE; plan),
          math500 (SmolLM2, vLLM)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write  # noqa: E402
from tts_cli import tts  # noqa: E402

NO_RM = ["selectors=[confidence]",
         "sweep.aggregators=[majority, {name: weighted, selector: confidence}, {name: best, selector: confidence}]"]
# group -> {run name: (recipe, overrides, problems)}
GROUPS = {
    "gsm8k": {"gsm8k_smollm2_vllm": ("gsm8k-smollm2-cpu.yaml", [], 100)},
    "arith": {
        "arith_smollm2_vllm": ("arith-smollm2-cpu.yaml", [], 100),
        "arith_gemma3_vllm": ("arith-gemma3-cpu.yaml", [], 100),
        "arith_smollm2_hf": ("arith-smollm2-cpu.yaml", ["roles.policy.backend=hf", "roles.policy.engine={}", *NO_RM],
                             50),
    },
    "math500": {"math500_smollm2_vllm": ("math500-smollm2-cpu.yaml", [], 40)},
}
OUT = {"gsm8k": "real_models_cpu.json", "arith": "real_models_arith_cpu.json",
       "math500": "real_models_math500_cpu.json"}
# ARISE: each model over N = 1, 2, 4 (majority), every (problem, level) cell run 2-3 times.
ARISE = {"arise_smollm2": "arith-smollm2-cpu.yaml", "arise_gemma3": "arith-gemma3-cpu.yaml"}
ARISE_SET = ["levels={field: strategy.n, values: [1, 2, 4], min_runs: 2, max_runs: 3}", "sweep=null", *NO_RM[:1]]
ARISE_PROBLEMS = 50


def run_args(recipe: str, overrides: list[str], limit: int, out: Path) -> list[str]:
    args = ["run", str(ROOT / "recipes" / recipe), "--out", str(out), "--limit", str(limit)]
    for o in overrides:
        args += ["--set", o]
    return args


def measure(name: str, recipe: str, overrides: list[str], limit: int, folder: Path) -> dict:
    out = folder / name
    args = run_args(recipe, overrides, limit, out)
    t0 = time.perf_counter()
    proc = tts(*args)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    roles = summary["cost_by_role"].values()
    problems = summary["problems"]
    return {"command": "tts " + " ".join(args), "run_dir": str(out), "process_wall_s": round(wall, 1),
            "problems": problems, "ok": summary["ok"], "accuracy": summary["accuracy"], "sweep": summary.get("sweep"),
            "generated_tokens_per_problem": sum(r["completion_tokens"] for r in roles) / problems,
            "prompt_tokens_per_problem": sum(r["prompt_tokens"] for r in roles) / problems,
            "eflops_per_problem": summary["eflops_per_problem"], "cost_model": summary["cost_model"],
            "wall_seconds": summary["wall_seconds_this_run"], "printed": proc.stdout}


def arise(folder: Path) -> dict:
    """ARISE of each model's levels run (same problems, same N levels), through `tts arise`."""
    runs = {}
    for name, recipe in ARISE.items():
        args = run_args(recipe, ARISE_SET, ARISE_PROBLEMS, folder / name)
        t0 = time.perf_counter()
        tts(*args)
        runs[name] = {"command": "tts " + " ".join(args), "process_wall_s": round(time.perf_counter() - t0, 1)}
    scored = json.loads(tts("arise", *(str(folder / n) for n in ARISE), "--json").stdout)
    return {"runs": runs, "arise": scored}


def plan(folder: Path, names: list[str]) -> dict:
    """`tts plan` over the two models' runs (majority by N, B200-profile eFLOPs) at budgets spanning
    their configurations: the quartiles of the configurations' mean cost."""
    runs = [a for n in names for a in ("--runs", str(folder / n))]
    probe = json.loads(tts("plan", "--budget", "1e18", *runs, "--plot", str(folder / "plan-all.png"), "--json").stdout)
    costs = sorted(c["mean_eflops"] for c in probe["configs"])
    out = {}
    for budget in (costs[len(costs) // 4], costs[len(costs) // 2], costs[3 * len(costs) // 4]):
        args = ["plan", "--budget", f"{budget:g}", *runs, "--plot", str(folder / f"plan-{budget:g}.png"), "--json"]
        result = json.loads(tts(*args).stdout)
        out[f"{budget:g}"] = {"command": "tts " + " ".join(args), "recommended": result["recommended"],
                              "oracle_accuracy": result["oracle_accuracy"], "configs": result["configs"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("group", choices=sorted(GROUPS))
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "real-models"))
    ap.add_argument("--out", help=f"results file (default: benchmarks/results/{OUT['arith']} for arith, ...)")
    args = ap.parse_args()
    folder = Path(args.runs_dir)
    rows = {}
    for name, (recipe, overrides, limit) in GROUPS[args.group].items():
        rows[name] = measure(name, recipe, overrides, limit, folder)
        print(rows[name]["printed"], flush=True)
    figures: dict = {"runs": rows}
    if args.group == "arith":
        figures["arise"] = arise(folder)
        print(json.dumps(figures["arise"]["arise"], indent=2), flush=True)
        figures["plan"] = plan(folder, ["arith_smollm2_vllm", "arith_gemma3_vllm"])
    out = args.out or str(ROOT / "benchmarks" / "results" / OUT[args.group])
    print(f"wrote {write(out, figures)}")


if __name__ == "__main__":
    main()
