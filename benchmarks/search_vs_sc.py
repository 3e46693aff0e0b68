"""Step-level search (beam search, DVTS) against plain self-consistency at equal eFLOPs, through
the product path (`tts run`), with every cost.

Toy task, 300 held-out problems, toy model on the hf backend; the searches are guided by the
policy's own step confidence (`recipes/toy-beam-search.yaml`: 4 beams x 4 expansions; DVTS: 4
subtrees x 4 expansions). Self-consistency (majority) runs at N = 4, 8, 16, 32, 64 on the same
problems. Problems are split half/half (seeded): on the calibration half, each search's baseline
is the N whose mean eFLOPs per problem is nearest the search's; on the test half both are reported
with accuracy, generated and prefill tokens and eFLOPs per problem, and the paired difference with
its bootstrap interval. Wall seconds are per whole run (300 problems, backends started once per run).

Usage: python benchmarks/search_vs_sc.py [--problems 300] [--out benchmarks/results/search_vs_sc_toy.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write  # noqa: E402
from tts_cli import tts  # noqa: E402

RECIPE = ROOT / "recipes" / "toy-beam-search.yaml"
SEARCHES = {"beam_search": [], "dvts": ["strategy.search.name=dvts", "strategy.search.subtrees=4"]}
SC_N = [4, 8, 16, 32, 64]


def sc(n: int) -> list[str]:
    return [f"strategy={{generator: {{name: sample, role: policy}}, aggregator: majority, n: {n}}}", "selectors=[]"]


def run(name: str, overrides: list[str], problems: int, folder: Path) -> dict:
    """`tts run` the recipe with overrides; per-problem grade and costs, and the run's wall time."""
    out = folder / name
    args = ["run", str(RECIPE), "--out", str(out), "--limit", str(problems)]
    for o in overrides:
        args += ["--set", o]
    tts(*args)
    summary = json.loads((out / "summary.json").read_text())
    rows = {}
    for line in (out / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        cost = r.get("cost", {}).values()
        rows[r["id"]] = {"grade": float(r.get("grade") or 0.0),
                         "generated": sum(c.get("completion_tokens", 0) for c in cost),
                         "prefill": sum(c.get("prompt_tokens", 0) - c.get("cached_tokens", 0) for c in cost),
                         "eflops": sum(c.get("eflops", 0.0) for c in cost)}
    return {"command": " ".join(["tts", *args]), "wall_seconds": summary["wall_seconds_this_run"], "problems": rows}


def means(rows: dict, ids: list[str]) -> dict:
    return {k: sum(rows[i][k] for i in ids) / len(ids) for k in ("grade", "generated", "prefill", "eflops")}


def main() -> None:
    from tts.evals.metrics import paired_bootstrap

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "search-vs-sc"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "search_vs_sc_toy.json"))
    args = ap.parse_args()
    folder = Path(args.runs_dir)
    runs = {name: run(name, o, args.problems, folder) for name, o in SEARCHES.items()}
    runs.update({f"sc_{n}": run(f"sc_{n}", sc(n), args.problems, folder) for n in SC_N})
    ids = sorted(runs["beam_search"]["problems"])
    random.Random(0).shuffle(ids)
    cal, test = sorted(ids[: len(ids) // 2]), sorted(ids[len(ids) // 2:])
    table = []
    for name in SEARCHES:
        mine = runs[name]["problems"]
        target = means(mine, cal)["eflops"]
        base = min(SC_N, key=lambda n: abs(means(runs[f"sc_{n}"]["problems"], cal)["eflops"] - target))
        theirs = runs[f"sc_{base}"]["problems"]
        diff = paired_bootstrap([mine[i]["grade"] for i in test], [theirs[i]["grade"] for i in test])
        row = {"search": name, "baseline": f"self-consistency N={base}", "test": means(mine, test),
               "baseline_test": means(theirs, test), "diff": list(diff),
               "wall_seconds": runs[name]["wall_seconds"], "baseline_wall_seconds": runs[f"sc_{base}"]["wall_seconds"]}
        table.append(row)
        a, b = row["test"], row["baseline_test"]
        print(f"{name}: {100 * a['grade']:.1f}% gen {a['generated']:.0f} prefill {a['prefill']:.0f} eFLOPs {a['eflops']:.3g} "
              f"wall {row['wall_seconds']:.1f} s | SC N={base}: {100 * b['grade']:.1f}% gen {b['generated']:.0f} "
              f"prefill {b['prefill']:.0f} eFLOPs {b['eflops']:.3g} wall {row['baseline_wall_seconds']:.1f} s | "
              f"diff {100 * diff[0]:+.1f} [{100 * diff[1]:+.1f}, {100 * diff[2]:+.1f}]", flush=True)
    curve = {n: {"test": means(runs[f"sc_{n}"]["problems"], test), "wall_seconds": runs[f"sc_{n}"]["wall_seconds"]}
             for n in SC_N}
    for n, v in curve.items():
        print(f"SC N={n}: {100 * v['test']['grade']:.1f}% eFLOPs {v['test']['eflops']:.3g}")
    print(f"wrote {write(args.out, {'calibration': cal, 'test': test, 'table': table, 'self_consistency': curve, 'runs': runs})}")


if __name__ == "__main__":
    main()
