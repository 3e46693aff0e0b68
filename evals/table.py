"""Render a run summary as rich tables: the headline and the N-vs-accuracy sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tts.evals.summary import sweep_columns


def pct(ci: dict[str, float] | None) -> str:
    """An interval as 'mean [lo, hi]' in percent ('-' when missing)."""
    if not ci:
        return "-"
    return f"{100 * ci['mean']:.1f} [{100 * ci['lo']:.1f}, {100 * ci['hi']:.1f}]"


def cost_label(name: str) -> str:
    """`kinetics(B200)` -> `kinetics, B200 hardware profile`; other cost models as named."""
    if name.endswith(")") and "(" in name:
        model, profile = name[:-1].split("(", 1)
        return f"{model}, {profile} hardware profile"
    return name


def render(summary: dict[str, Any], console: Any = None) -> None:
    """Print the summary; intervals are 95% bootstrap intervals over problems."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
    head = Table(title=f"run '{summary['recipe']}'", show_header=False)
    head.add_row("problems", f"{summary['problems']} ({summary['ok']} ok, {summary['failed']} failed)")
    head.add_row("accuracy % [95% CI]", pct(summary.get("accuracy")))
    head.add_row("tokens / problem", f"{summary['tokens_per_problem']:.1f}")
    head.add_row("latency s / problem (mean; problems run concurrently)", f"{summary['seconds_per_problem']:.3f}")
    wall, ran = summary.get("wall_seconds_this_run"), summary.get("problems_this_run")
    if wall and ran:
        head.add_row("throughput problems / s (this invocation)", f"{ran / wall:.3f}")
    head.add_row(f"eFLOPs / problem ({cost_label(summary.get('cost_model', ''))})", f"{summary['eflops_per_problem']:.3g}")
    if wall is not None:
        head.add_row("wall seconds (this invocation)", f"{wall:.1f}")
        if summary.get("start_seconds_this_run"):
            head.add_row("of which starting backends", f"{summary['start_seconds_this_run']:.1f}")
    console.print(head)
    if "(" in summary.get("cost_model", ""):
        console.print("eFLOPs follow the named hardware profile, not this machine; another: "
                      "--set cost='{name: kinetics, hardware: H100}' (B200, H100, H200, CPU or a number)")
    sweep = summary.get("sweep")
    if not sweep or not sweep["rows"]:
        return
    aggs = [k for k in sweep_columns(sweep) if k != "pass"]
    table = Table(title="accuracy % by N [95% CI] (one run at the largest N, subsets without replacement)")
    for col in ["N", *aggs, "pass@N", "tokens/problem", "eFLOPs/problem"]:
        table.add_column(col, justify="right")
    for row in sweep["rows"]:
        table.add_row(str(row["n"]), *(pct(row[a]) for a in aggs), pct(row["pass"]),
                      f"{row['tokens_per_problem']:.0f}", f"{row.get('eflops_per_problem', 0):.3g}")
    console.print(table)
    console.print("The headline accuracy grades the run's own answer per problem (a vote tie broken by the run's "
                  "seeded rng); the N rows score a tie as the expected value over the tied answers, so the two "
                  "can differ when votes tie.")
    for name, g in sweep.get("paired_gain_vs_single_sample", {}).items():
        console.print(f"paired gain {name}: {100 * g['mean']:+.1f} points "
                      f"[{100 * g['lo']:+.1f}, {100 * g['hi']:+.1f}] over {g['problems']} problems")


ARISE_LEGEND = (
    "ARISE: per problem, each level-to-level accuracy gain is discounted by the token ratio t(j-1)/t(j) and each "
    "loss amplified by its inverse, then averaged over problems: at most 1 (0 -> 100% at no extra tokens), 0 when "
    "compute changes nothing, below 0 when more compute loses answers. A gain bought with 4x the tokens counts a "
    "quarter, so ARISE can sit near 0 while mean accuracy rises.",
    "runs by level: runs summed over problems at each level (adaptive sampling adds runs where results vary); "
    "up/down: level-to-level steps, summed over problems, where a problem's accuracy rose / fell (a problem counts "
    "once per step, so they can exceed the problem count).",
)


def render_arise(results: list[dict[str, Any]], console: Any = None) -> None:
    """One row per levels run: ARISE with its 95% bootstrap interval, the slope metric beside it,
    and accuracy / tokens / runs per level."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=200)
    table = Table(title="ARISE (higher is better; < 0: net negative scaling) vs the slope metric")
    for col in ("run", "model", "levels", "ARISE [95% CI]", "slope (Δacc/Δtok)", "acc % by level",
                "tokens by level", "runs by level", "up/down"):
        table.add_column(col, justify="right" if col not in ("run", "model", "levels") else "left")
    for r in results:
        table.add_row(
            Path(r["run_dir"]).name, ", ".join(r["models"]),
            f"{r['field'].split('.')[-1]}={'/'.join(str(v) for v in r['values'])}",
            f"{r['arise']:+.3f} [{r['arise_lo']:+.3f}, {r['arise_hi']:+.3f}]", f"{r['slope']:.2e}",
            " / ".join(f"{100 * a:.1f}" for a in r["level_accuracy"]),
            " / ".join(f"{t:.0f}" for t in r["level_tokens"]),
            " / ".join(str(n) for n in r["level_runs"]), f"{r['improved']}/{r['degraded']}")
    console.print(table)
    for line in ARISE_LEGEND:
        console.print(line)


def render_plan(result: dict[str, Any], console: Any = None) -> None:
    """The planner's answer at the budget: per model its best N, the recommendation, the oracle."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=160)
    table = Table(title=f"best fixed N per model at {result['budget']:.3g} eFLOPs/problem "
                        f"({result['cost_model']}, {result['metric']}@N, {result['problems']} problems)")
    for col in ("model", "N", "accuracy %", "mean eFLOPs/problem"):
        table.add_column(col, justify="left" if col == "model" else "right")
    rec = result["recommended"]
    for label, info in result["per_model"].items():
        star = " *" if rec and label == rec["model"] else ""
        table.add_row(label + star, str(info["n"]), f"{100 * info['accuracy']:.1f}", f"{info['mean_eflops']:.3g}")
    console.print(table)
    if rec is None:
        console.print(f"nothing fits {result['budget']:.3g} eFLOPs/problem: the cheapest configuration needs "
                      f"{result['cheapest_eflops']:.3g} on average; raise --budget")
    else:
        console.print(f"recommended (*): {rec['model']} with N={rec['n']}: {100 * rec['accuracy']:.1f}% "
                      f"(problems over the budget count as wrong)")
    if result["metric"] == "pass":
        console.print("metric pass@N: a problem counts as solved when any of N samples is correct, i.e. a "
                      "perfect verifier picks it; --metric majority for what voting achieves")
    console.print(f"per-problem oracle frontier at this budget: {100 * result['oracle_accuracy']:.1f}% "
                  f"(upper bound: picks each problem's best config using its labels)")
    law = result.get("tokens_law")
    if law:
        console.print(f"frontier tokens ≈ {law['a']:.3g}·(Tera-eFLOPs)^{law['b']:.2f}: doubling the budget "
                      f"buys ×{law['doubling_factor']:.2f} generated tokens")
