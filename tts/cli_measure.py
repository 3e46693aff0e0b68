"""The measurement commands: `tts plan` (Kinetics budget planner), `tts arise` (ARISE scores of
levels runs), `tts report` (plots and an HTML report) and `tts regrade` (re-grade a stored run). Registered on the main app in tts.cli."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from tts.cli_common import fail


def plan(budget: float = typer.Option(..., help="eFLOPs per problem, e.g. 2e12"),
         runs: list[Path] = typer.Option([], "--runs", help="run folders (one model or setting each)"),
         traces: Optional[Path] = typer.Option(None, help="a traces JSONL file instead of (or with) runs"),
         metric: str = typer.Option("majority", help="majority (what voting achieves) or pass (any of N correct: "
                                    "assumes a perfect verifier)"),
         hardware: str = typer.Option("B200", help="intensity profile: B200, H100, H200, CPU, or a number"),
         plot: Optional[Path] = typer.Option(None, help="where to save the frontier plot (default: plan.png "
                                             "in the first run folder, else beside the traces file)"),
         save_traces: Optional[Path] = typer.Option(None, help="also write the traces used, as JSONL"),
         as_json: bool = typer.Option(False, "--json", help="print the plan as JSON instead of a table")) -> None:
    """Best model and N under an eFLOPs budget.

    Which model and N give the best accuracy under an eFLOPs budget per problem, and the oracle frontier."""
    from tts.cost.model import KineticsCost
    from tts.evals.planner import plan as make_plan
    from tts.evals.planner import plan_figure
    from tts.evals.traces import TraceError, from_run, read_traces, write_traces

    try:
        sets = [from_run(r) for r in runs] + (read_traces(traces) if traces else [])
        if not sets:
            fail("give --runs RUN_DIR ... or --traces FILE")
        result = make_plan(sets, budget, metric, KineticsCost(hardware=_number_or_name(hardware)))
    except (TraceError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if save_traces:
        write_traces(sets, save_traces)
    plot = plot or (runs[0] if runs else Path(traces or ".").parent) / "plan.png"
    plan_figure(result).savefig(plot, dpi=110)
    if as_json:
        typer.echo(json.dumps({**result, "plot": str(plot)}, indent=2))
        return
    from tts.evals.table import render_plan

    render_plan(result)
    typer.echo(f"plot: {plot}")


def _number_or_name(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def arise(runs: list[Path] = typer.Argument(..., help="levels run folders (one per model)"),
          as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")) -> None:
    """ARISE of levels runs.

    Each levels run's ARISE score, with the slope metric beside it."""
    import yaml

    from tts.components import RecipeError
    from tts.evals.levels import arise_of
    from tts.recipe import parse_recipe

    results = []
    for run in runs:
        lock = run / "recipe.lock.yaml"
        if not lock.exists():
            fail(f"{run} is not a run folder (no recipe.lock.yaml)")
        try:
            recipe = parse_recipe(yaml.safe_load(lock.read_text(encoding="utf-8"))["recipe"], str(lock))
            if recipe.levels is None:
                fail(f"{run} was not run with 'levels:' (ARISE needs several compute levels per problem)")
            results.append(arise_of(run, recipe))
        except (RecipeError, FileNotFoundError) as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    from tts.evals.table import render_arise

    render_arise(results)


def report(runs: list[Path] = typer.Argument(..., help="run folders to plot together"),
           out: Path = typer.Option(Path("report"), help="output folder")) -> None:
    """Plots and report.html for runs.

    Accuracy against N, tokens and eFLOPs (PNG), tables and TTSPM fits, for one or more runs."""
    from tts.evals.report import build_report, write_report
    from tts.components import RecipeError

    try:
        rep = build_report(runs)
        page = write_report(rep, out)
    except (RecipeError, FileNotFoundError) as exc:
        fail(str(exc))
    for warning in rep.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {page}")


def _spec(text: Optional[str], flag: str) -> object:
    """A component spec from the command line: a name (`math`) or inline YAML (`{name: math, ...}`)."""
    import yaml

    if text is None:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"{flag}: not a name or inline YAML mapping: {str(exc).splitlines()[0]}")
    return None


def regrade(run_dir: Path = typer.Argument(..., help="a run folder made by `tts run`"),
            grader: Optional[str] = typer.Option(None, help="grader spec, e.g. math or '{name: math, timeout: 3}' "
                                                 "(default: the run's own)"),
            extractor: Optional[str] = typer.Option(None, help="extractor spec, e.g. math or "
                                                    "'{name: regex, pattern: ...}' (default: the run's own)")) -> None:
    """Re-grade a stored run.

    Re-extracts and re-grades from the candidates' texts (no model is called); writes
    records.regraded.jsonl and summary.regraded.json beside the originals."""
    from tts.evals.regrade import REGRADED_SUMMARY, RegradeError, regrade as run_regrade
    from tts.components import RecipeError

    try:
        report = run_regrade(run_dir, _spec(extractor, "--extractor"), _spec(grader, "--grader"))
    except (RegradeError, RecipeError, FileNotFoundError) as exc:
        fail(str(exc))
    changed = report["changed"]
    before, after = report["accuracy_before"], report["accuracy_after"]
    typer.echo(f"{run_dir}: {report['problems']} problems, {changed['candidates']} candidates re-graded")
    typer.echo(f"  candidate answers changed: {changed['candidate_answers']}, candidate grades changed: "
               f"{changed['candidate_grades']}")
    typer.echo(f"  final answers changed: {changed['final_answers']}, final grades changed: {changed['final_grades']}")
    if before is not None and after is not None:
        typer.echo(f"  accuracy: {before:.1%} before -> {after:.1%} after")
    for row in _sweep_changes(report):
        typer.echo(row)
    typer.echo(f"  wrote {run_dir / REGRADED_SUMMARY} (the original summary.json is unchanged)")


def _sweep_changes(report: dict) -> list[str]:
    """One line per sweep N and column: before -> after (in %), when the run has a sweep."""
    rows_before = (report["summary_before"].get("sweep") or {}).get("rows", [])
    rows_after = (report["summary_after"].get("sweep") or {}).get("rows", [])
    lines = []
    for b, a in zip(rows_before, rows_after):
        cols = [k for k, v in b.items() if isinstance(v, dict)]
        parts = [f"{k} {100 * b[k]['mean']:.1f} -> {100 * a[k]['mean']:.1f}" for k in cols]
        lines.append(f"  N={b['n']}: " + ", ".join(parts))
    return lines
