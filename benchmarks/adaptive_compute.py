"""Adaptive compute on stored samples: each stopping rule replayed on the same streams as fixed-N
majority voting, with its setting chosen on a calibration split and reported on a disjoint test split.

64 samples per problem are drawn once (toy task, 300 problems, toy model on the hf backend; any
recipe with --recipe/--set, e.g. SmolLM2 on GSM8K) with their token log-probabilities. Each rule
consumes them in order (averaged over --orders random orders). Problems are split half/half (seeded).
On the calibration half, each rule family's setting (confidence, epsilon) is the cheapest whose
accuracy is within --tolerance of fixed N=64 majority (else the most accurate), and its baseline is
the smallest fixed N that reaches the rule's calibration accuracy. On the test half both are reported
with every cost: accuracy, samples, generated and prefill tokens, Kinetics eFLOPs and sequential
rounds (a rule that looks after each sample waits for it; fixed N is one parallel round), with paired
bootstrap intervals for the accuracy difference and the token and eFLOPs savings. Wall time is not
measured: this is a replay.

Usage: python benchmarks/adaptive_compute.py [--problems 300] [--orders 5] [--out benchmarks/results/adaptive_compute_toy.json]
       python benchmarks/adaptive_compute.py --recipe recipes/gsm8k-smollm2-cpu.yaml --problems 40 --n 16 \
           --set roles.policy.backend=hf --set "roles.policy.engine={}" --window 32 \
           --out benchmarks/results/adaptive_compute_smollm2_gsm8k.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write  # noqa: E402

log = logging.getLogger("adaptive_compute")
N_MAX = 64


async def draw(args: argparse.Namespace) -> dict:
    """The model's shape (to price samples), and per problem: prompt tokens, and for each sample its
    answer, grade, tokens and log-probs."""
    from tts.budget import Budget
    from tts.build import build_pieces
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.recipe import load_recipe
    from tts.strategies.sample import SampleGenerator

    recipe = load_recipe(args.recipe, [*args.set, f"strategy.n={N_MAX}", "sweep=null", "selectors=[]"])
    pieces = build_pieces(recipe)
    backend = next(iter(pieces.backends.values()))
    await backend.start()
    gen, out = SampleGenerator("policy", round_size=N_MAX), []
    try:
        async def one(p):
            ctx = StrategyContext(p, pieces.roles, Ledger(), Budget("tokens"), recipe.seed, {}, pieces.extractor)
            cands = await gen.sample(p, ctx, N_MAX)
            grades = await pieces.grader.grade(p, [c.answer for c in cands])
            return {"id": p.id, "prompt_tokens": cands[0].prompt_tokens,
                    "samples": [{"answer": c.answer, "grade": g, "tokens": c.completion_tokens,
                                 "logprobs": [round(x, 4) for x in c.logprobs or []]} for c, g in zip(cands, grades)]}
        problems = pieces.problems(args.problems)
        for i in range(0, len(problems), 32):
            out += await asyncio.gather(*(one(p) for p in problems[i:i + 32]))
            log.info("drawn %d/%d problems", len(out), len(problems))
        shape = backend.shape.to_dict()
    finally:
        await backend.close()
    return {"recipe": args.recipe, "set": args.set, "shape": shape, "problems": out}


def from_run(run: Path, role: str = "policy") -> dict:
    """Samples from a stored `tts run` (its records and lock): answers, grades and lengths; records
    keep log-prob summaries, not per-token log-probs, so DeepConf online cannot be replayed."""
    import yaml

    from tts.records import read_records

    lock = yaml.safe_load((run / "recipe.lock.yaml").read_text(encoding="utf-8"))
    problems = []
    for r in sorted(read_records(run), key=lambda r: r["id"]):
        cands = [c for c in r.get("candidates", []) if c.get("role") == role]
        if r.get("status") == "ok" and cands:
            problems.append({"id": r["id"], "prompt_tokens": cands[0]["prompt_tokens"],
                             "samples": [{"answer": c["answer"], "grade": c["grade"], "tokens": c["completion_tokens"],
                                          "logprobs": []} for c in cands]})
    return {"recipe": str(run), "set": [], "shape": lock["shapes"][role], "problems": problems}


def as_candidates(pid: str, samples: list[dict]):
    from tts.types import Candidate

    return [Candidate(pid, i, "policy", i, [], "", s["answer"], grade=s["grade"], logprobs=s["logprobs"],
                      completion_tokens=s["tokens"]) for i, s in enumerate(samples)]


def majority_value(cands) -> float:
    """Expected grade of majority vote with random tie-breaking."""
    votes = Counter(c.answer for c in cands if c.answer is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winners = [a for a, v in votes.items() if v == top]
    grade = {c.answer: c.grade for c in cands}
    return sum(grade[a] for a in winners) / len(winners)


class _Ctx:
    import logging
    log = logging.getLogger("replay")


def replay_rule(rule, cands, round_size: int = 1) -> tuple[float, int, list[int]]:
    """(majority value of what the rule consumed, samples, each consumed sample's tokens) for a
    sample-then-stop rule."""
    from tts.types import Problem

    k = 0
    while k < len(cands):
        k = min(len(cands), k + round_size)
        if rule.should_stop(Problem(cands[0].problem_id, ""), cands[:k], _Ctx()):
            break
    used = cands[:k]
    return majority_value(used), k, [c.completion_tokens for c in used]


def replay_deepconf_online(cands, warmup: int, keep: float, window: int, stop) -> tuple[float, int, list[int]]:
    """Warm-up traces in full, later ones cut at their abort point (aborted traces do not vote)."""
    from tts.strategies.deepconf import abort_point, warmup_threshold
    from tts.types import Problem

    warm = cands[:warmup]
    threshold = warmup_threshold(warm, keep, window)
    voters, lengths, k = list(warm), [c.completion_tokens for c in warm], warmup
    while k < len(cands) and not (stop and stop.should_stop(Problem(cands[0].problem_id, ""), voters, _Ctx())):
        c = cands[k]
        cut = abort_point(c.logprobs, window, threshold)
        lengths.append(c.completion_tokens if cut is None else cut)
        if cut is None:
            voters.append(c)
        k += 1
    return majority_value(voters), k, lengths


def rules(window: int, with_deepconf: bool = True) -> dict[str, dict[str, Any]]:
    """Rule families, each a grid of settings; the setting is chosen on the calibration split."""
    from tts.strategies.stopping import AdaptiveConsistency, SaturationStop

    beta = {f"beta {c}": (lambda cs, c=c: replay_rule(AdaptiveConsistency(c, "beta"), cs)) for c in (0.8, 0.9, 0.95, 0.99)}
    dirichlet = {f"dirichlet {c}": (lambda cs, c=c: replay_rule(AdaptiveConsistency(c, "dirichlet", draws=500), cs))
                 for c in (0.9, 0.95)}
    saturation = {f"eps {e}": (lambda cs, e=e: replay_rule(SaturationStop(e, min_samples=4), cs))
                  for e in (0.1, 0.05, 0.02, 0.01)}
    deepconf = {f"beta {c}": (lambda cs, c=c: replay_deepconf_online(cs, 16, 0.9, window, AdaptiveConsistency(c, "beta")))
                for c in (0.9, 0.95)}
    out = {"adaptive consistency (Beta)": beta, "adaptive consistency (Dirichlet)": dirichlet,
           "TTSPM saturation (vote share)": saturation}
    if with_deepconf:
        out["DeepConf online (warm-up 16, keep 90%) + Beta"] = deepconf
    return out


@functools.lru_cache(maxsize=1)
def _kinetics() -> Any:
    from tts.cost.model import KineticsCost

    return KineticsCost()


def price(shape: Any, prompt: int, lengths: list[int]) -> float:
    """Kinetics eFLOPs (B200 profile) of one prompt prefilled once and these samples decoded (called
    for every setting, problem and order: the cost model is built once)."""
    from tts.cost.model import Usage

    return _kinetics()(shape, Usage("generate", prompt, 0, tuple(lengths), len(lengths)))


def per_problem(data: list[dict], orders: int, window: int, shape: Any, seed: int = 0, deepconf: bool = True) -> dict:
    """For fixed N and every rule setting, per-problem means over `orders` shuffles of: majority
    value, samples, generated tokens, eFLOPs and sequential rounds (a rule at round size 1 waits for
    each sample; fixed N is one round of N in parallel)."""
    rng = random.Random(seed)
    fams = rules(window, deepconf)
    keys = [("fixed", n) for n in range(1, N_MAX + 1)] + [(f, k) for f, grid in fams.items() for k in grid]
    out = {key: {m: [0.0] * len(data) for m in ("acc", "n", "tokens", "eflops", "rounds")} for key in keys}
    for _ in range(orders):
        for i, prob in enumerate(data):
            cands = as_candidates(prob["id"], prob["samples"])
            rng.shuffle(cands)
            for key in keys:
                if key[0] == "fixed":
                    value, k, lengths, rounds = majority_value(cands[:key[1]]), key[1], \
                        [c.completion_tokens for c in cands[:key[1]]], 1
                else:
                    value, k, lengths = fams[key[0]][key[1]](cands)
                    rounds = k
                row = out[key]
                for m, v in (("acc", value), ("n", k), ("tokens", sum(lengths)),
                             ("eflops", price(shape, prob["prompt_tokens"], lengths)), ("rounds", rounds)):
                    row[m][i] += v / orders
    return out


def split(count: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded half/half split of problem indices: calibration, test."""
    idx = list(range(count))
    random.Random(seed).shuffle(idx)
    return sorted(idx[: count // 2]), sorted(idx[count // 2:])


def mean(values: list[float], idx: list[int]) -> float:
    return sum(values[i] for i in idx) / len(idx)


def saving_ci(rule: list[float], fixed: list[float], idx: list[int], reps: int = 2000, seed: int = 0) -> list[float]:
    """1 - sum(rule) / sum(fixed) over the test problems, with a paired percentile bootstrap."""
    rng, point = random.Random(seed), 1 - mean(rule, idx) / mean(fixed, idx)
    boots = []
    for _ in range(reps):
        draw = [idx[rng.randrange(len(idx))] for _ in idx]
        boots.append(1 - mean(rule, draw) / max(mean(fixed, draw), 1e-12))
    boots.sort()
    return [point, boots[int(0.025 * reps)], boots[int(0.975 * reps) - 1]]


def evaluate(data: list[dict], orders: int, window: int, shape: Any, tolerance: float = 0.01, seed: int = 0,
             deepconf: bool = True) -> dict:
    """Choose each family's setting on the calibration split (the cheapest whose accuracy is within
    `tolerance` of fixed N_MAX majority; else the most accurate) and its fixed-N baseline there (the
    smallest N reaching the rule's calibration accuracy); report both on the test split."""
    from tts.evals.metrics import paired_bootstrap

    cal, test = split(len(data), seed)
    res = per_problem(data, orders, window, shape, seed, deepconf)
    prompt = [p["prompt_tokens"] for p in data]
    fixed = {n: res[("fixed", n)] for n in range(1, N_MAX + 1)}
    target = mean(fixed[N_MAX]["acc"], cal) - tolerance

    def costs(row: dict, idx: list[int]) -> dict:
        return {"accuracy": mean(row["acc"], idx), "samples": mean(row["n"], idx), "generated_tokens": mean(row["tokens"], idx),
                "prefill_tokens": mean(prompt, idx), "eflops": mean(row["eflops"], idx), "rounds": mean(row["rounds"], idx)}

    table = []
    for family, grid in rules(window, deepconf).items():
        rows = {k: res[(family, k)] for k in grid}
        good = [k for k in rows if mean(rows[k]["acc"], cal) >= target]
        chosen = min(good, key=lambda k: mean(rows[k]["tokens"], cal)) if good else \
            max(rows, key=lambda k: mean(rows[k]["acc"], cal))
        rule = rows[chosen]
        base_n = next((n for n in range(1, N_MAX + 1) if mean(fixed[n]["acc"], cal) >= mean(rule["acc"], cal) - 1e-9), N_MAX)
        base = fixed[base_n]
        diff = paired_bootstrap([rule["acc"][i] for i in test], [base["acc"][i] for i in test])
        same_n = min(N_MAX, max(1, round(mean(rule["n"], test))))  # equal samples: the equal-compute view
        same = paired_bootstrap([rule["acc"][i] for i in test], [fixed[same_n]["acc"][i] for i in test])
        table.append({"family": family, "chosen_on_calibration": chosen, "meets_target_on_calibration": bool(good),
                      "baseline_fixed_n": base_n, "test": {"rule": costs(rule, test), "fixed": costs(base, test)},
                      "test_accuracy_diff": list(diff),
                      "test_vs_fixed_at_same_n": {"n": same_n, "fixed_accuracy": mean(fixed[same_n]["acc"], test),
                                                  "diff": list(same)},
                      "test_token_saving": saving_ci(rule["tokens"], base["tokens"], test),
                      "test_eflops_saving": saving_ci(rule["eflops"], base["eflops"], test),
                      "calibration": {k: costs(r, cal) for k, r in rows.items()}})
    curve = {n: {"calibration": costs(fixed[n], cal), "test": costs(fixed[n], test)}
             for n in (1, 2, 4, 8, 16, 32, 64) if n <= N_MAX}
    return {"problems": len(data), "calibration_problems": len(cal), "test_problems": len(test), "orders": orders,
            "tolerance": tolerance, "fixed_majority": curve, "rules": table}


def print_table(res: dict) -> None:
    print(f"{res['problems']} problems ({res['calibration_problems']} calibration, {res['test_problems']} test), "
          f"{res['orders']} orders; fixed-N majority on the test split:")
    for n, v in res["fixed_majority"].items():
        t = v["test"]
        print(f"  N={n:>2}: acc {100 * t['accuracy']:.1f}%  generated {t['generated_tokens']:.0f}  eFLOPs {t['eflops']:.3g}")
    print(f"{'rule (setting chosen on calibration)':<62} {'acc %':>6} {'N':>5} {'gen tok':>7} {'eFLOPs':>8} {'rounds':>6} | "
          f"{'fixed N':>7} {'acc %':>6} {'gen tok':>7} | {'acc diff [95%]':>20} {'token saving [95%]':>20} | "
          f"{'vs fixed at same N [95%]':>26}")
    for r in res["rules"]:
        a, b = r["test"]["rule"], r["test"]["fixed"]
        d, sv = r["test_accuracy_diff"], r["test_token_saving"]
        same = r["test_vs_fixed_at_same_n"]
        sd = same["diff"]
        name = f"{r['family']}, {r['chosen_on_calibration']}"
        print(f"{name:<62} {100 * a['accuracy']:6.1f} {a['samples']:5.1f} {a['generated_tokens']:7.0f} {a['eflops']:8.3g} "
              f"{a['rounds']:6.1f} | {r['baseline_fixed_n']:>7} {100 * b['accuracy']:6.1f} {b['generated_tokens']:7.0f} | "
              f"{100 * d[0]:+5.1f} [{100 * d[1]:+5.1f}, {100 * d[2]:+5.1f}] {100 * sv[0]:+5.0f}% [{100 * sv[1]:+4.0f}, {100 * sv[2]:+4.0f}] | "
              f"N={same['n']:>2}: {100 * sd[0]:+5.1f} [{100 * sd[1]:+5.1f}, {100 * sd[2]:+5.1f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--recipe", default=str(Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"))
    ap.add_argument("--set", action="append", default=[], help="recipe override, as in tts run")
    ap.add_argument("--n", type=int, default=64, help="samples drawn per problem")
    ap.add_argument("--orders", type=int, default=5)
    ap.add_argument("--window", type=int, default=8, help="DeepConf window (toy traces are ~20 tokens)")
    ap.add_argument("--tolerance", type=float, default=0.01,
                    help="calibration target: within this of fixed N_MAX majority's accuracy")
    ap.add_argument("--samples", default=None, help="reuse samples saved by an earlier run")
    ap.add_argument("--from-run", default=None, help="replay a stored `tts run` folder's samples (no DeepConf)")
    ap.add_argument("--save-samples", default=None, help="where to keep the drawn samples "
                    "(default: runs/adaptive_compute/<out name>.samples.json)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "adaptive_compute_toy.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    global N_MAX
    N_MAX = args.n
    if args.from_run:
        drawn = from_run(Path(args.from_run))
    elif args.samples:
        drawn = json.loads(Path(args.samples).read_text())
    else:
        drawn = asyncio.run(draw(args))
        keep = Path(args.save_samples or ROOT / "runs" / "adaptive_compute" / f"{Path(args.out).stem}.samples.json")
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(json.dumps(drawn))
    from tts.cost.shape import ModelShape

    data = drawn["problems"]
    N_MAX = min(len(p["samples"]) for p in data)
    deepconf = all(s["logprobs"] for p in data for s in p["samples"])
    res = evaluate(data, args.orders, args.window, ModelShape(**drawn["shape"]), args.tolerance, deepconf=deepconf)
    res["drawn"] = {"recipe": drawn["recipe"], "set": drawn["set"], "samples_per_problem": N_MAX}
    print(f"wrote {write(args.out, res)}")
    print_table(res)


if __name__ == "__main__":
    main()
