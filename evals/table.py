"""Render a run summary as rich tables: the headline and the N-vs-accuracy sweep."""

from __future__ import annotations

from typing import Any


def _pct(ci: dict[str, float] | None) -> str:
    if not ci:
        return "-"
    return f"{100 * ci['mean']:.1f} [{100 * ci['lo']:.1f}, {100 * ci['hi']:.1f}]"


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
    head.add_row("accuracy % [95% CI]", _pct(summary.get("accuracy")))
    head.add_row("tokens / problem", f"{summary['tokens_per_problem']:.1f}")
    head.add_row("seconds / problem", f"{summary['seconds_per_problem']:.3f}")
    head.add_row(f"FLOPs / problem ({summary.get('cost_model', '')})", f"{summary['eflops_per_problem']:.3g}")
    if "wall_seconds_this_run" in summary:
        head.add_row("wall seconds (this invocation)", f"{summary['wall_seconds_this_run']:.1f}")
    console.print(head)
    sweep = summary.get("sweep")
    if not sweep or not sweep["rows"]:
        return
    aggs = [k for k in sweep["rows"][0] if k not in ("n", "problems", "pass", "tokens_per_problem")]
    table = Table(title="accuracy % by N [95% CI] (one run at the largest N, subsets without replacement)")
    for col in ["N", *aggs, "pass@N", "tokens/problem"]:
        table.add_column(col, justify="right")
    for row in sweep["rows"]:
        table.add_row(str(row["n"]), *(_pct(row[a]) for a in aggs), _pct(row["pass"]),
                      f"{row['tokens_per_problem']:.0f}")
    console.print(table)
    for name, g in sweep.get("paired_gain_vs_single_sample", {}).items():
        console.print(f"paired gain {name}: {100 * g['mean']:+.1f} points "
                      f"[{100 * g['lo']:+.1f}, {100 * g['hi']:+.1f}] over {g['problems']} problems")
