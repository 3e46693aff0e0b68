"""The measurement commands: `tts plan` (Kinetics budget planner), `tts arise` (ARISE scores of
levels runs) and `tts report` (plots and an HTML report). Registered on the main app in tts.cli."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from tts.cli_common import fail


def plan(budget: float = typer.Option(..., help="eFLOPs per problem, e.g. 2e12"),
         runs: list[Path] = typer.Option([], "--runs", help="run folders (one model or setting each)"),
         traces: Optional[Path] = typer.Option(None, help="a traces JSONL file instead of (or with) runs"),
         metric: str = typer.Option("pass", help="pass (Best-of-N coverage) or majority"),
         hardware: str = typer.Option("B200", help="intensity profile: B200, H100, H200, CPU, or a number"),
         plot: Path = typer.Option(Path("plan.png"), help="where to save the frontier plot"),
         save_traces: Optional[Path] = typer.Option(None, help="also write the traces used, as JSONL")) -> None:
    """Which model and N give the best accuracy under an eFLOPs budget per problem."""
    from tts.cost.model import KineticsCost
    from tts.cost.planner import plan as make_plan
    from tts.cost.planner import plan_figure
    from tts.cost.traces import TraceError, from_run, read_traces, write_traces

    try:
        sets = [from_run(r) for r in runs] + (read_traces(traces) if traces else [])
        if not sets:
            fail("give --runs RUN_DIR ... or --traces FILE")
        result = make_plan(sets, budget, metric, KineticsCost(hardware=_number_or_name(hardware)))
    except (TraceError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if save_traces:
        write_traces(sets, save_traces)
    plan_figure(result).savefig(plot, dpi=110)
    from evals.table import render_plan

    render_plan(result)
    typer.echo(f"plot: {plot}")


def _number_or_name(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def arise(runs: list[Path] = typer.Argument(..., help="levels run folders (one per model)"),
          as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")) -> None:
    """ARISE score of each levels run, with the slope metric beside it."""
    import yaml

    from tts.components import RecipeError
    from tts.levels import arise_of
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
    from evals.table import render_arise

    render_arise(results)


def report(runs: list[Path] = typer.Argument(..., help="run folders to plot together"),
           out: Path = typer.Option(Path("report"), help="output folder")) -> None:
    """PNG plots (accuracy vs N, tokens, eFLOPs) and report.html for one or more runs."""
    from evals.report import build_report, write_report
    from tts.components import RecipeError

    try:
        page = write_report(build_report(runs), out)
    except (RecipeError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {page}")
