"""The `tts` command line: run a recipe, show a run, list what is registered, check a recipe,
re-grade a stored run.
Heavy libraries are imported inside the commands, so `tts --help` answers at once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Optional

import typer

from tts.cli_common import PLAIN_HELP, fail

app = typer.Typer(rich_markup_mode=PLAIN_HELP, add_completion=False, no_args_is_help=True,
                  help="tts: test-time scaling experiments over vLLM, OpenAI-compatible and HF backends.")


def _setup_logging(verbose: bool) -> None:
    """Warnings (everything with -v), and the progress lines of `tts.progress` either way."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tts.progress").setLevel(logging.INFO)


@app.command()
def run(recipe: Path = typer.Argument(..., help="recipe YAML file"),
        limit: Optional[int] = typer.Option(None, help="only the first N problems"),
        set_: list[str] = typer.Option([], "--set", help="override a recipe field: key.path=value"),
        out: Optional[Path] = typer.Option(None, help="run folder (default: output.dir/output.name)"),
        progress: bool = typer.Option(True, help="show progress: a bar on a terminal, a log line per tenth "
                                      "of the problems when stderr is a file or pipe"),
        force: bool = typer.Option(False, "--force", help="resume although a chat template or package "
                                   "version changed since the run began (recorded in the lock)"),
        verbose: bool = typer.Option(False, "-v", "--verbose")) -> None:
    """Run or resume a recipe.

    Records land in the run folder as problems finish; rerun the same command to resume."""
    _setup_logging(verbose)
    if limit is not None and limit < 1:
        fail(f"--limit must be a positive number of problems, got {limit}")
    from tts.components import RecipeError
    from tts.registry import RegistryError
    from tts.runner import run_recipe

    try:
        summary = asyncio.run(run_recipe(recipe, set_, out, limit, progress, force))
    except KeyboardInterrupt:
        fail("interrupted; finished problems are recorded; run the same command again to resume", 130)
    except (RecipeError, RegistryError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    except Exception as exc:  # a backend that would not load, a dataset that would not read
        fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", 1)
    from tts.evals.table import render, render_arise

    render_arise([summary]) if "arise" in summary else render(summary)


@app.command()
def show(run_dir: Path = typer.Argument(..., help="a run folder made by `tts run`")) -> None:
    """Print a run's summary table.

    summary.json when it was written from exactly the records in the folder, else recomputed from
    them (ARISE for a levels run)."""
    import yaml

    from tts.evals.summary import stored_summary, summarize_run_dir
    from tts.components import RecipeError
    from tts.recipe import parse_recipe

    lock = run_dir / "recipe.lock.yaml"
    if not lock.exists():
        fail(f"{run_dir} is not a run folder (no recipe.lock.yaml)")
    try:
        recipe = parse_recipe(yaml.safe_load(lock.read_text())["recipe"], str(lock))
        if recipe.levels is not None:
            from tts.evals.table import render_arise
            from tts.evals.levels import arise_of

            return render_arise([arise_of(run_dir, recipe)])
        summary = stored_summary(run_dir) or summarize_run_dir(run_dir, recipe)
    except (RecipeError, FileNotFoundError) as exc:
        fail(str(exc))
    from tts.evals.table import render

    render(summary)


@app.command("list")
def list_() -> None:
    """List everything registered.

    Backends, strategies, verifiers and datasets: built-ins and plug-ins."""
    from rich.console import Console
    from rich.table import Table

    from tts.registry import KINDS, available

    table = Table("kind", "name", "from")
    for kind in KINDS:
        for name, origin in sorted(available(kind).items()):
            table.add_row(kind, name, origin)
    console = Console()
    Console(width=200).print(table) if not console.is_terminal else console.print(table)  # pipes: no 80-column cut


@app.command()
def check(recipe: Path = typer.Argument(..., help="recipe YAML file"),
          set_: list[str] = typer.Option([], "--set", help="override a recipe field: key.path=value")) -> None:
    """Validate a recipe, loading no model.

    Builds every component and checks datasets and model files exist."""
    from tts.build import check_recipe
    from tts.components import RecipeError
    from tts.recipe import load_recipe

    try:
        parsed = load_recipe(recipe, set_)
        check_recipe(parsed)
    except RecipeError as exc:
        fail(str(exc))
    for warning in device_warnings(parsed):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{recipe}: ok")


def device_warnings(recipe: Any) -> list[str]:
    """Roles that ask for CUDA on a machine where none is visible (the recipe is valid, but will not run here)."""
    wanted = [name for name, spec in recipe.roles.items() if "cuda" in str(spec.engine.get("device", ""))]
    if not wanted:
        return []
    import torch

    if torch.cuda.is_available():
        return []
    return [f"roles.{name}.engine.device is cuda but no CUDA device is visible here; "
            f"--set roles.{name}.engine.device=cpu (and dtype=float32) to run on this machine" for name in wanted]


def _register_measurement() -> None:
    from tts import cli_measure

    app.command()(cli_measure.plan)
    app.command()(cli_measure.arise)
    app.command()(cli_measure.report)
    app.command()(cli_measure.regrade)


_register_measurement()

from tts.cli_code import sandbox_app, swebench_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox")
app.add_typer(swebench_app, name="swebench")

from tts.cli_learn import learn_app  # noqa: E402

app.add_typer(learn_app, name="learn")

toy_app = typer.Typer(rich_markup_mode=PLAIN_HELP, help="The built-in toy arithmetic task and its models.", no_args_is_help=True)
app.add_typer(toy_app, name="toy")


@toy_app.command("train")
def toy_train(out: Path = typer.Option(..., help="folder for the trained model"),
              size: str = typer.Option("default", help="default (quickstart), small (a weaker draft) or moe (8 experts, for reroute)"),
              steps: Optional[int] = typer.Option(None, help="training steps (fixed count, not wall time; "
                                                  "default: what the packaged model of that size used)"),
              seed: int = typer.Option(0), batch: int = typer.Option(64),
              n_ops: int = typer.Option(2, help="operations per training problem")) -> None:
    """Train a toy model (about 2 minutes for the default size on 2 cores; slow, seeded)."""
    _setup_logging(True)
    from tts.toy.train import PACKAGED_STEPS, train

    try:
        card = train(out, size=size, steps=steps or PACKAGED_STEPS.get(size, 1000), batch=batch, seed=seed, n_ops=n_ops)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"saved {out}: {card['parameters']} parameters, final loss {card['final_loss']:.4f}, "
               f"{card['seconds']} s")


def main() -> None:
    from tts.progress import quiet_library_bars

    quiet_library_bars()  # before any library imports tqdm
    app()


if __name__ == "__main__":
    main()
