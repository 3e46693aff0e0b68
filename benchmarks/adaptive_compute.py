"""Adaptive compute on stored samples: each stopping rule replayed on the same streams as fixed-N
majority voting.

64 samples per problem are drawn once (toy task, 300 problems, toy model on the hf backend; any
recipe with --recipe/--set, e.g. SmolLM2 on GSM8K) with their token log-probabilities. Each rule then consumes them in
order (averaged over --orders random orders of the 64), and we report, per rule: accuracy, samples
and tokens per problem; fixed-N majority at the same mean N, with the paired bootstrap interval of
the accuracy difference; and the tokens fixed N needs to reach the rule's accuracy on its own curve
(the first N whose accuracy is at least the rule's), with the saving.

Usage: python benchmarks/adaptive_compute.py [--problems 300] [--orders 5] [--out adaptive.json]
       python benchmarks/adaptive_compute.py --recipe recipes/gsm8k-self-consistency.yaml --problems 20 --n 32 \
           --set roles.policy.model=SmolLM2.gguf --set "roles.policy.engine={}" --window 32 \
           --set roles.policy.sampling.max_tokens=160
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_MAX = 64


async def draw(args: argparse.Namespace) -> list[dict]:
    """Per problem: prompt tokens, and for each sample its answer, grade, tokens and log-probs."""
    from tts.backends.hf import HFBackend
    from tts.budget import Budget
    from tts.build import build_pieces
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.recipe import load_recipe
    from tts.strategies.sample import SampleGenerator

    recipe = load_recipe(args.recipe, [*args.set, f"strategy.n={N_MAX}", "sweep=null", "selectors=[]"])
    pieces = build_pieces(recipe)
    backend = next(iter(pieces.backends.values()))
    assert isinstance(backend, HFBackend)
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
    finally:
        await backend.close()
    return out


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


def replay_rule(rule, cands, round_size: int = 1) -> tuple[float, int, int]:
    """(majority value of what the rule consumed, samples, tokens) for a sample-then-stop rule."""
    from tts.types import Problem

    k = 0
    while k < len(cands):
        k = min(len(cands), k + round_size)
        if rule.should_stop(Problem(cands[0].problem_id, ""), cands[:k], _Ctx()):
            break
    used = cands[:k]
    return majority_value(used), k, sum(c.completion_tokens for c in used)


def replay_deepconf_online(cands, warmup: int, keep: float, window: int, stop) -> tuple[float, int, int]:
    """Warm-up traces in full, later ones cut at their abort point (aborted traces do not vote)."""
    from tts.strategies.deepconf import abort_point, warmup_threshold
    from tts.types import Problem

    warm = cands[:warmup]
    threshold = warmup_threshold(warm, keep, window)
    voters, tokens, k = list(warm), sum(c.completion_tokens for c in warm), warmup
    while k < len(cands) and not (stop and stop.should_stop(Problem(cands[0].problem_id, ""), voters, _Ctx())):
        c = cands[k]
        cut = abort_point(c.logprobs, window, threshold)
        tokens += c.completion_tokens if cut is None else cut
        if cut is None:
            voters.append(c)
        k += 1
    return majority_value(voters), k, tokens


def rules(window: int):
    from tts.strategies.stopping import AdaptiveConsistency, SaturationStop

    out = {}
    for conf in (0.9, 0.95, 0.99):
        out[f"adaptive-consistency (beta, {conf})"] = lambda cs, c=conf: replay_rule(AdaptiveConsistency(c, "beta"), cs)
    out["adaptive-consistency (dirichlet, 0.95)"] = lambda cs: replay_rule(
        AdaptiveConsistency(0.95, "dirichlet", draws=500), cs)
    for eps in (0.05, 0.01):
        out[f"ttspm saturation (vote share, eps {eps})"] = lambda cs, e=eps: replay_rule(SaturationStop(e, min_samples=4), cs)
    for conf in (0.9, 0.95):
        out[f"deepconf online (warmup 16, keep 90%) + beta {conf}"] = lambda cs, c=conf: replay_deepconf_online(
            cs, 16, 0.9, window, AdaptiveConsistency(c, "beta"))
    return out


def evaluate(data: list[dict], orders: int, window: int, seed: int = 0) -> dict:
    from tts.evals.metrics import paired_bootstrap
    from tts.strategies.deepconf import DeepConfVote

    rng = random.Random(seed)
    fixed_acc = {n: [0.0] * len(data) for n in range(1, N_MAX + 1)}
    fixed_tok = {n: 0.0 for n in range(1, N_MAX + 1)}
    replays = rules(window)
    rule_res = {name: {"acc": [0.0] * len(data), "n": 0.0, "tokens": 0.0} for name in replays}
    offline = [0.0] * len(data)
    for _ in range(orders):
        for i, prob in enumerate(data):
            cands = as_candidates(prob["id"], prob["samples"])
            rng.shuffle(cands)
            toks = [c.completion_tokens for c in cands]
            for n in range(1, N_MAX + 1):
                fixed_acc[n][i] += majority_value(cands[:n]) / orders
                fixed_tok[n] += (prob["prompt_tokens"] + sum(toks[:n])) / orders / len(data)
            for name, run in replays.items():
                value, k, tokens = run(cands)
                rule_res[name]["acc"][i] += value / orders
                rule_res[name]["n"] += k / orders / len(data)
                rule_res[name]["tokens"] += (prob["prompt_tokens"] + tokens) / orders / len(data)
            offline[i] += majority_value([c for c, _ in DeepConfVote(0.1, window).kept(cands)]) / orders
    table = []
    for name, r in rule_res.items():
        acc = sum(r["acc"]) / len(data)
        matched_n = max(1, round(r["n"]))
        mean, lo, hi = paired_bootstrap(r["acc"], fixed_acc[matched_n])
        need = next((n for n in range(1, N_MAX + 1) if sum(fixed_acc[n]) / len(data) >= acc - 1e-9), None)
        # above the whole fixed curve: compare with its most expensive point (a lower bound on the saving)
        need_tok = fixed_tok[need or N_MAX]
        table.append({"rule": name, "accuracy": acc, "samples": r["n"], "tokens": r["tokens"],
                      "fixed_n_at_same_n": matched_n, "fixed_acc_at_same_n": sum(fixed_acc[matched_n]) / len(data),
                      "diff_vs_fixed_same_n": [mean, lo, hi], "fixed_n_to_match": need, "fixed_tokens_to_match": need_tok,
                      "token_saving": 1 - r["tokens"] / need_tok})
    curve = {n: {"accuracy": sum(fixed_acc[n]) / len(data), "tokens": fixed_tok[n]}
             for n in (1, 2, 4, 8, 16, 32, 64) if n <= N_MAX}
    return {"problems": len(data), "orders": orders, "fixed_majority": curve, "rules": table,
            "deepconf_offline_keep10_at_64": sum(offline) / len(data)}


def print_table(res: dict) -> None:
    print(f"{res['problems']} problems, {res['orders']} orders; fixed-N majority:")
    for n, v in res["fixed_majority"].items():
        print(f"  N={n:>2}: acc {100 * v['accuracy']:.1f}%  tokens/problem {v['tokens']:.0f}")
    print(f"  DeepConf offline (keep 10%) at N={N_MAX}: {100 * res['deepconf_offline_keep10_at_64']:.1f}%")
    head = f"{'rule':<52} {'acc %':>6} {'N':>5} {'tokens':>7} | {'fixed@N':>7} {'diff [95% CI]':>22} | {'N to match':>10} {'tokens':>7} {'saving':>7}"
    print(head)
    for r in res["rules"]:
        d = r["diff_vs_fixed_same_n"]
        sav = f"{'≥' if r['fixed_n_to_match'] is None else ''}{100 * r['token_saving']:.0f}%"
        tok = f"{r['fixed_tokens_to_match']:.0f}"
        print(f"{r['rule']:<52} {100 * r['accuracy']:6.1f} {r['samples']:5.1f} {r['tokens']:7.0f} | "
              f"{100 * r['fixed_acc_at_same_n']:7.1f} {100 * d[0]:+6.1f} [{100 * d[1]:+5.1f}, {100 * d[2]:+5.1f}] | "
              f"{str(r['fixed_n_to_match'] or f'>{N_MAX}'):>10} {tok:>7} {sav:>7}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--recipe", default=str(Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"))
    ap.add_argument("--set", action="append", default=[], help="recipe override, as in tts run")
    ap.add_argument("--n", type=int, default=64, help="samples drawn per problem")
    ap.add_argument("--orders", type=int, default=5)
    ap.add_argument("--window", type=int, default=8, help="DeepConf window (toy traces are ~20 tokens)")
    ap.add_argument("--samples", default=None, help="reuse samples saved by an earlier run")
    ap.add_argument("--out", default="adaptive_compute.json")
    args = ap.parse_args()
    global N_MAX
    N_MAX = args.n
    if args.samples:
        data = json.loads(Path(args.samples).read_text())
    else:
        data = asyncio.run(draw(args))
        Path(args.out).with_suffix(".samples.json").write_text(json.dumps(data))
    N_MAX = min(len(p["samples"]) for p in data)
    res = evaluate(data, args.orders, args.window)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print_table(res)


if __name__ == "__main__":
    main()
