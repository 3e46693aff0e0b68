"""The Kinetics planner (specs/kinetics.md, steps 9–11): from measured traces of several models or
settings, which model and N maximise accuracy under a per-problem eFLOPs budget.

Two answers, kept apart: the per-problem oracle frontier of the paper (for each cost cap, each
problem takes its best affordable configuration — an upper bound, since choosing uses the labels),
and the best fixed configuration (one model and N for every problem), which is what a user can
deploy. Accuracy always comes from the measured traces; the paper's fitted power laws relate cost to
tokens only, and are used here only for that (reconstruction: fitted on the frontier's tokens)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from tts.evals.metrics import aggregator_at_k, pass_at_k
from tts.cost.model import KineticsCost
from tts.evals.traces import ProblemTraces, TraceSet

METRICS = ("pass", "majority")


@dataclass
class Config:
    """One model and N: per-problem expected cost, accuracy and generated tokens."""

    label: str
    n: int
    cost: dict[str, float] = field(default_factory=dict)
    acc: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)

    def fixed_accuracy(self, cap: float, problems: list[str]) -> float:
        """Mean accuracy when every problem runs this config and any over the cap scores 0."""
        return sum(self.acc[p] if self.cost[p] <= cap else 0.0 for p in problems) / len(problems)

    def mean_cost(self) -> float:
        return sum(self.cost.values()) / len(self.cost)


def _accuracy(p: ProblemTraces, n: int, metric: str, rng: random.Random) -> float:
    if metric == "pass":
        return pass_at_k(len(p.correct), sum(1 for c in p.correct if c > 0), n)
    from tts.strategies.aggregators import Majority
    from tts.types import Candidate

    cands = [Candidate(p.problem, i, "", None, [], "", a, grade=g)
             for i, (a, g) in enumerate(zip(p.answers or [None] * len(p.correct), p.correct))]
    return aggregator_at_k(Majority(), cands, n, 200, rng)


def configs_of(sets: list[TraceSet], metric: str = "pass", cost_model: KineticsCost | None = None,
               ns: list[int] | None = None) -> tuple[list[Config], list[str]]:
    """Every (model, N) config on the problems all sets share; N up to each set's samples."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got '{metric}'")
    cost_model = cost_model or KineticsCost()
    problems = sorted(set.intersection(*(set(s.problems) for s in sets)))
    if not problems:
        raise ValueError("the trace sets share no problem; plan over runs of the same dataset")
    out = []
    for ts in sets:
        grid = ns or [2 ** k for k in range(0, 16) if 2 ** k <= ts.min_samples]
        for n in (k for k in grid if k <= ts.min_samples):
            cfg, rng = Config(ts.label, n), random.Random(n)
            for pid in problems:
                p = ts.problems[pid]
                cfg.cost[pid] = cost_model.expected(ts.shape, p.prompt_tokens, p.tokens, n)
                cfg.acc[pid] = _accuracy(p, n, metric, rng)
                cfg.tokens[pid] = n * sum(p.tokens) / len(p.tokens)
            out.append(cfg)
    return out, problems


def oracle_frontier(configs: list[Config], problems: list[str], grid: list[float]) -> tuple[list[float], list[float]]:
    """Per cap: mean over problems of the best affordable accuracy (0 if none), and the mean
    generated tokens of the chosen configs (cheapest among ties; nan until every problem can
    afford some config, so the tokens curve is not inflated by problems joining)."""
    acc_out, tok_out = [], []
    for cap in grid:
        acc = tok = 0.0
        covered = 0
        for pid in problems:
            ok = [c for c in configs if c.cost[pid] <= cap]
            if ok:
                best = max(ok, key=lambda c: (c.acc[pid], -c.cost[pid]))
                acc, tok, covered = acc + best.acc[pid], tok + best.tokens[pid], covered + 1
        acc_out.append(acc / len(problems))
        tok_out.append(tok / len(problems) if covered == len(problems) else math.nan)
    return acc_out, tok_out


def cost_grid(configs: list[Config], points: int = 100) -> list[float]:
    """Log-spaced caps from the cheapest to the dearest per-problem cost."""
    lo = min(min(c.cost.values()) for c in configs)
    hi = max(max(c.cost.values()) for c in configs)
    if hi <= lo:
        return [lo]
    return [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]


def fit_power_law(x: list[float], y: list[float], offset: float | None = 0.0) -> tuple[float, float, float]:
    """y ≈ a·x^b + offset, least squares in log space of (y − offset); `offset=None` also fits
    the offset (scanned below min y, picked by squared error in y)."""
    def fit(off: float) -> tuple[float, float, float]:
        pts = [(math.log(xi), math.log(yi - off)) for xi, yi in zip(x, y) if xi > 0 and yi - off > 0]
        if len(pts) < 2:
            return math.nan, math.nan, math.inf
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0.0
        a = math.exp(my - b * mx)
        return a, b, sum((a * xi ** b + off - yi) ** 2 for xi, yi in zip(x, y))
    if offset is not None:
        a, b, _ = fit(offset)
        return a, b, offset
    span = max(y) - min(y) or 1.0
    candidates = [min(y) - span * 4 * (1 - k / 400) - 1e-9 * span for k in range(401)]
    best = min(candidates, key=lambda off: fit(off)[2])
    a, b, _ = fit(best)
    return a, b, best


def plan(sets: list[TraceSet], budget: float, metric: str = "pass", cost_model: KineticsCost | None = None,
         points: int = 100) -> dict[str, Any]:
    """The recommendation at `budget` eFLOPs per problem (None when no configuration fits it on any
    problem), and the curves behind it."""
    if budget <= 0:
        raise ValueError("the budget must be a positive number of eFLOPs per problem")
    cost_model = cost_model or KineticsCost()
    configs, problems = configs_of(sets, metric, cost_model)
    grid = sorted(set(cost_grid(configs, points)) | {budget})
    oracle, tokens = oracle_frontier(configs, problems, grid)
    per_model = {}
    for ts in sets:
        mine = [c for c in configs if c.label == ts.label]
        best = max(mine, key=lambda c: (c.fixed_accuracy(budget, problems), -c.mean_cost()))
        per_model[ts.label] = {"n": best.n, "accuracy": best.fixed_accuracy(budget, problems),
                               "mean_eflops": best.mean_cost(),
                               "frontier": oracle_frontier(mine, problems, grid)[0]}
    top = max(per_model, key=lambda k: (per_model[k]["accuracy"], -per_model[k]["mean_eflops"]))
    fits = any(c.cost[p] <= budget for c in configs for p in problems)
    b_idx = grid.index(budget)
    law = _tokens_law(grid, tokens)
    return {"budget": budget, "metric": metric, "cost_model": cost_model.name, "problems": len(problems),
            "oracle_accuracy": oracle[b_idx],
            "recommended": {"model": top, **{k: v for k, v in per_model[top].items() if k != "frontier"}}
            if fits else None,
            "cheapest_eflops": min(c.mean_cost() for c in configs),
            "per_model": per_model, "grid": grid, "oracle": oracle, "oracle_tokens": tokens,
            "tokens_law": law,
            "configs": [{"model": c.label, "n": c.n, "mean_eflops": c.mean_cost(),
                         "accuracy_uncapped": sum(c.acc.values()) / len(problems)} for c in configs]}


def _tokens_law(grid: list[float], tokens: list[float]) -> dict[str, float] | None:
    """Frontier tokens vs Tera-eFLOPs as y = a·x^b (the paper's form; offset 0), where it grows."""
    pts = [(g / 1e12, t) for g, t in zip(grid, tokens) if t > 0 and not math.isnan(t)]
    if len({t for _, t in pts}) < 3:
        return None
    a, b, _ = fit_power_law([p[0] for p in pts], [p[1] for p in pts])
    return {"a": a, "b": b, "doubling_factor": 2 ** b}


def plan_figure(result: dict[str, Any]) -> Any:
    """Accuracy vs eFLOPs per problem: each model's frontier, the oracle envelope, the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, info in result["per_model"].items():
        ax.plot(result["grid"], info["frontier"], label=label)
    ax.plot(result["grid"], result["oracle"], "k--", label="oracle over models (upper bound)")
    ax.axvline(result["budget"], color="grey", linestyle=":", label="budget")
    ax.set_xscale("log")
    ax.set_xlabel(f"eFLOPs per problem ({result['cost_model']})")
    ax.set_ylabel(f"accuracy ({result['metric']}@N)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
