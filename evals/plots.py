"""Scaling plots from run summaries: accuracy (%, as the tables print it) against N, tokens and
eFLOPs per problem, several runs overlaid. Each curve's line holds exactly the plotted points (the
report tests read them back); its 95% bootstrap interval is drawn as error bars nudged sideways so
the intervals of overlapping curves stay apart. Colour names the curve (majority, pass, ...), line
style and marker name the run, so identical runs do not hide each other."""

from __future__ import annotations

from typing import Any

from tts.evals.summary import sweep_columns

AXES = {  # figure name -> (x key in a sweep row, x label, log x)
    "accuracy_vs_n": ("n", "N (samples per problem)", True),
    "accuracy_vs_tokens": ("tokens_per_problem", "tokens per problem", True),
    "accuracy_vs_eflops": ("eflops_per_problem", "eFLOPs per problem", True),
}
RUN_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (1, 3)), "P")]
NUDGE = 0.035  # error bars of the k-th curve sit at x · 2^(NUDGE·(k − mid)): a few percent apart on a log axis


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Curves of one run: each sweep column (aggregators and pass@N) as rows of points (accuracy as
    fractions); a run without a sweep is one point (its accuracy at its own cost)."""
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


def _curves(runs: list[tuple[str, dict[str, Any]]], x_key: str) -> list[tuple[int, str, str, list[dict]]]:
    """(run index, run name, column, points with an x) for every curve that has points."""
    out = []
    for i, (run, summary) in enumerate(runs):
        for col, points in series(summary).items():
            pts = [p for p in points if p.get(x_key) is not None]
            if pts:
                out.append((i, run, col, pts))
    return out


def scaling_figure(name: str, runs: list[tuple[str, dict[str, Any]]], levels: list[dict[str, Any]] = ()) -> Any:
    """One plot over all runs; `levels` (ARISE results) add accuracy-by-level curves to the token plot."""
    x_key, x_label, log_x = AXES[name]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    curves = _curves(runs, x_key)
    column_colour: dict[str, str] = {}
    for k, (i, run, col, pts) in enumerate(curves):
        colour = column_colour.setdefault(col, colours[len(column_colour) % len(colours)])
        style, marker = RUN_STYLES[i % len(RUN_STYLES)]
        xs = [p[x_key] for p in pts]
        ys = [100 * p["mean"] for p in pts]
        ax.plot(xs, ys, linestyle=style, marker=marker, color=colour, label=f"{run}: {col}")
        shift = 2 ** (NUDGE * (k - (len(curves) - 1) / 2))
        ax.errorbar([x * shift for x in xs], ys, fmt="none", ecolor=colour, elinewidth=1, capsize=2, alpha=0.6,
                    yerr=[[y - 100 * p["lo"] for y, p in zip(ys, pts)], [100 * p["hi"] - y for y, p in zip(ys, pts)]])
    if name == "accuracy_vs_tokens":
        for res in levels:
            ax.plot(res["level_tokens"], [100 * a for a in res["level_accuracy"]], marker="s", linestyle="--",
                    color="black", label=f"{res['run_dir'].rstrip('/').split('/')[-1]}: by level")
    if log_x:
        ax.set_xscale("log", base=2 if x_key == "n" else 10)
    ax.set_xlabel(x_label + ("" if x_key != "eflops_per_problem" else f" ({_cost_name(runs)})"))
    ax.set_ylabel("accuracy % (bars: 95% bootstrap interval)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _cost_name(runs: list[tuple[str, dict[str, Any]]]) -> str:
    return ", ".join(sorted({s.get("cost_model", "") for _, s in runs if s.get("cost_model")}))
