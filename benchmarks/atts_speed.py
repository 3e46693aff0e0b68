"""ATTS against target-only and synchronous scaling, one run of each variant on the same problems.

Variants (same m samples per problem, same alpha, majority vote, seeds fixed by the recipe):
target-only and draft-only sampling; ATTS synchronous (top-B per round, B = alpha*m) and
asynchronous, each with the paper's `continue` rejection and our `replace` variant; and plain
self-consistency on the target with 2m and 3m samples, the baseline at about ATTS's eFLOPs (each
ATTS row is compared, paired, with the one nearest its eFLOPs). alpha is the spec's default, not
tuned on these problems. Per variant:
accuracy with its 95% interval, the paired difference to target-only with its interval, target
tokens generated and prefilled per problem, eFLOPs per problem, wall seconds of the run (all
variants share engines started once, after an untimed warm-up; start-up is excluded) and, for async ATTS, the realised rejection rate per turn with its binomial
(Wilson) interval around alpha — turn 0 is exchangeable with the calibration bank, later turns
need not be (the spec's pitfall), so their drift is shown, not hidden.

Usage: python benchmarks/atts_speed.py [--problems 200] [--m 8] [--alpha 0.4] [--backend hf|vllm]
           [--recipe recipes/toy-atts.yaml] [--set key=value ...] [--out results.json]
On a GPU pass a real pair (or random-weight shapes, for the wall-clock ratio only):
  --recipe recipes/math500-atts.yaml --backend vllm --set roles.draft.model=... --set roles.target.model=...
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {
    "target-only": ["strategy.generator={name: sample, role: target}"],
    "draft-only": ["strategy.generator={name: sample, role: draft}"],
    "sync": ["strategy.generator.mode=sync"],
    "async": ["strategy.generator.mode=async"],
    "sync-replace": ["strategy.generator.mode=sync", "strategy.generator.on_reject=replace"],
    "async-replace": ["strategy.generator.mode=async", "strategy.generator.on_reject=replace"],
    # plain self-consistency on the target at about the eFLOPs ATTS spends (2 and 3 times m samples)
    "target-only-2m": ["strategy.generator={name: sample, role: target}"],
    "target-only-3m": ["strategy.generator={name: sample, role: target}"],
}
SCALE = {"target-only-2m": 2, "target-only-3m": 3}


def overrides(name: str, m: int) -> list[str]:
    """The variant's recipe overrides; the scaled target-only rows draw k*m samples."""
    return VARIANTS[name] + ([f"strategy.n={SCALE[name] * m}"] if name in SCALE else [])


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p, d = k / n, 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def per_turn(records: list[dict]) -> list[dict]:
    """Draft steps tested at each turn and how many went to the target."""
    seen, rejected = defaultdict(int), defaultdict(int)
    for r in records:
        for c in r.get("candidates", []):
            for s in c.get("meta", {}).get("steps", []):
                if s["author"] == "draft" and s.get("p") is not None:
                    seen[s["turn"]] += 1
                    rejected[s["turn"]] += bool(s["rejected"])
    return [{"turn": t, "steps": seen[t], "rate": rejected[t] / seen[t], "interval": wilson(rejected[t], seen[t])}
            for t in sorted(seen)]


class Bench:
    """Every variant's pieces built on one set of started engines, so wall seconds exclude start-up."""

    def __init__(self, recipe: Path, common: list[str]) -> None:
        self.recipe, self.common, self.backends = recipe, common, {}

    def pieces(self, overrides: list[str]):
        from tts.build import build_pieces
        from tts.recipe import load_recipe

        return build_pieces(load_recipe(self.recipe, self.common + overrides), backends=self.backends)

    async def run(self, overrides: list[str], out: Path, limit: int) -> tuple[list[dict], float]:
        from tts.controller import Controller, start_backends
        from tts.records import read_records

        pieces = self.pieces(overrides)
        await start_backends(pieces)
        t0 = time.perf_counter()
        await Controller(pieces, out, limit, progress=False, manage_backends=False).run()
        return sorted(read_records(out), key=lambda r: r["id"]), time.perf_counter() - t0

    async def close(self) -> None:
        from tts.controller import close_backends

        await close_backends(self.backends.values())


def describe(name: str, records: list[dict], seconds: float, base: list[float] | None) -> dict:
    from tts.evals.metrics import mean_ci, paired_bootstrap

    grades = [float(r.get("grade") or 0.0) for r in records]
    n = len(records)
    cost = lambda role, key: sum(r.get("cost", {}).get(role, {}).get(key, 0) for r in records) / n  # noqa: E731
    row = {"variant": name, "problems": n, "accuracy": mean_ci(grades),
           "target_generated": cost("target", "completion_tokens"),
           "target_prefill": cost("target", "prompt_tokens"),  # scoring prefills and continuation prompts
           "draft_generated": cost("draft", "completion_tokens"),
           "target_eflops": cost("target", "eflops"), "eflops": cost("target", "eflops") + cost("draft", "eflops"),
           "seconds": seconds}
    if base is not None:
        row["vs_target_only"] = paired_bootstrap(grades, base)
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(Path(__file__).resolve().parents[1] / "recipes" / "toy-atts.yaml"))
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=0.4)
    ap.add_argument("--backend", default=None, help="hf or vllm for both roles (default: the recipe's)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    common = [f"strategy.n={args.m}", f"strategy.generator.alpha={args.alpha}", "sweep=null", *args.sets]
    if args.backend:
        common += [f"roles.draft.backend={args.backend}", f"roles.target.backend={args.backend}"]
    rows, turns, base, grades = [], {}, None, {}
    bench = Bench(Path(args.recipe), common)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            await bench.run(VARIANTS["async"], Path(tmp) / "warm-up", 4)  # first calls pay kernel set-up
            for name in args.variants.split(","):
                records, secs = await bench.run(overrides(name, args.m), Path(tmp) / name, args.problems)
                row = describe(name, records, secs, base)
                grades[name] = [float(r.get("grade") or 0.0) for r in records]
                if name == "target-only":
                    base = grades[name]
                if name.startswith("async"):
                    turns[name] = per_turn(records)
                rows.append(row)
                print(render_row(row), flush=True)
    finally:
        await bench.close()
    equal_eflops(rows, grades)
    print_table(rows, turns, args.alpha)
    if args.out:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from provenance import write

        print(f"wrote {write(args.out, {'args': vars(args), 'rows': rows, 'turns': turns})}")


def equal_eflops(rows: list[dict], grades: dict[str, list[float]]) -> None:
    """Each ATTS row against the plain self-consistency row nearest its total eFLOPs (paired)."""
    from tts.evals.metrics import paired_bootstrap

    plain = [r for r in rows if r["variant"].startswith("target-only")]
    for r in rows:
        if r["variant"] in ("sync", "async", "sync-replace", "async-replace") and plain:
            near = min(plain, key=lambda p: abs(p["eflops"] - r["eflops"]))
            r["vs_equal_eflops_sc"] = {"variant": near["variant"], "eflops_ratio": r["eflops"] / near["eflops"],
                                       "diff": paired_bootstrap(grades[r["variant"]], grades[near["variant"]])}


def render_row(r: dict) -> str:
    acc = r["accuracy"]
    diff = r.get("vs_target_only")
    d = f"{100 * diff[0]:+.1f} [{100 * diff[1]:+.1f}, {100 * diff[2]:+.1f}]" if diff else "—"
    return (f"| {r['variant']} | {100 * acc[0]:.1f} [{100 * acc[1]:.1f}, {100 * acc[2]:.1f}] | {d} | "
            f"{r['target_generated']:.1f} | {r['target_prefill']:.1f} | {r['draft_generated']:.1f} | "
            f"{r['target_eflops']:.3g} | {r['eflops']:.3g} | {r['seconds']:.1f} |")


def print_table(rows: list[dict], turns: dict, alpha: float) -> None:
    print("\n| variant | accuracy % [95% CI] | Δ vs target-only (paired) | target tokens generated / problem | "
          "target tokens prefilled / problem | draft tokens / problem | target eFLOPs / problem | "
          "all eFLOPs / problem | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(render_row(r))
    by = {r["variant"]: r for r in rows}
    if "target-only" in by:
        for name in ("sync", "async", "sync-replace", "async-replace"):
            if name in by:
                t, a = by["target-only"], by[name]
                print(f"{name} ÷ target-only: target generated tokens {a['target_generated'] / max(t['target_generated'], 1e-9):.2f}×, "
                      f"target prefilled {a['target_prefill'] / max(t['target_prefill'], 1e-9):.1f}×, "
                      f"target eFLOPs {a['target_eflops'] / max(t['target_eflops'], 1e-9):.2f}×, "
                      f"all eFLOPs {a['eflops'] / max(t['eflops'], 1e-9):.2f}×, wall {a['seconds'] / t['seconds']:.2f}×")
    for r in rows:
        if "vs_equal_eflops_sc" in r:
            e = r["vs_equal_eflops_sc"]
            d = e["diff"]
            print(f"{r['variant']} vs {e['variant']} (plain self-consistency, {e['eflops_ratio']:.2f}× its eFLOPs): "
                  f"{100 * d[0]:+.1f} points [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]")
    if "sync" in by and "async" in by:
        print(f"async vs sync wall-clock: {by['sync']['seconds'] / by['async']['seconds']:.2f}×")
    for name, rows_t in turns.items():
        print(f"\nrealised rejection rate per turn ({name}, alpha = {alpha}):")
        for t in rows_t:
            lo, hi = t["interval"]
            inside = "contains alpha" if lo <= alpha <= hi else "excludes alpha"
            print(f"  turn {t['turn']}: {t['rate']:.3f} [{lo:.3f}, {hi:.3f}] over {t['steps']} steps ({inside})")


if __name__ == "__main__":
    asyncio.run(main())
