"""Scaling plots from run summaries: accuracy against N, tokens and eFLOPs per problem, with 95%
bootstrap bands, several runs overlaid. Each function returns a matplotlib Figure whose lines hold
exactly the plotted points (the report tests read them back)."""

from __future__ import annotations

from typing import Any

from evals.summary import sweep_columns

AXES = {  # figure name -> (x key in a sweep row, x label, log x)
    "accuracy_vs_n": ("n", "N (samples per problem)", True),
    "accuracy_vs_tokens": ("tokens_per_problem", "tokens per problem", True),
    "accuracy_vs_eflops": ("eflops_per_problem", "eFLOPs per problem", True),
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Curves of one run: each sweep column (aggregators and pass@N) as rows of points; a run
    without a sweep is one point (its accuracy at its own cost)."""
    sweep = summary.get("sweep")
    if sweep and sweep["rows"]:
        cols = sweep_columns(sweep)
        return {col: [{**{k: r[k] for k in ("n", "tokens_per_problem", "eflops_per_problem") if k in r},
                       **r[col]} for r in sweep["rows"]] for col in cols}
    if summary.get("accuracy"):
        point = {"n": summary.get("n", 1), "tokens_per_problem": summary["tokens_per_problem"],
                 "eflops_per_problem": summary["eflops_per_problem"], **summary["accuracy"]}
        return {"accuracy": [point]}
    return {}


def scaling_figure(name: str, runs: list[tuple[str, dict[str, Any]]], levels: list[dict[str, Any]] = ()) -> Any:
    """One plot over all runs; `levels` (ARISE results) add accuracy-by-level curves to the token plot."""
    x_key, x_label, log_x = AXES[name]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run, summary in runs:
        for col, points in series(summary).items():
            pts = [p for p in points if p.get(x_key) is not None]
            if not pts:
                continue
            xs = [p[x_key] for p in pts]
            line, = ax.plot(xs, [p["mean"] for p in pts], marker="o", label=f"{run}: {col}")
            ax.fill_between(xs, [p["lo"] for p in pts], [p["hi"] for p in pts], alpha=0.2, color=line.get_color())
    if name == "accuracy_vs_tokens":
        for res in levels:
            ax.plot(res["level_tokens"], res["level_accuracy"], marker="s", linestyle="--",
                    label=f"{res['run_dir'].rstrip('/').split('/')[-1]}: by level")
    if log_x:
        ax.set_xscale("log", base=2 if x_key == "n" else 10)
    ax.set_xlabel(x_label + ("" if x_key != "eflops_per_problem" else f" ({_cost_name(runs)})"))
    ax.set_ylabel("accuracy (95% bootstrap band)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _cost_name(runs: list[tuple[str, dict[str, Any]]]) -> str:
    return ", ".join(sorted({s.get("cost_model", "") for _, s in runs if s.get("cost_model")}))
