"""Programmatic entry point: load a recipe, build it, run the controller and summarise the run.
The one place that joins the core (which writes records) and evals (which read them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tts.build import Pieces, build_pieces
from tts.controller import Controller
from tts.recipe import load_recipe


def run_dir_for(recipe: Any, out: Path | None) -> Path:
    return Path(out) if out else Path(recipe.output.dir) / (recipe.output.name or recipe.name)


async def run_recipe(path: str | Path, overrides: list[str] | None = None, out: Path | None = None,
                     limit: int | None = None, progress: bool | str = False, force: bool = False) -> dict[str, Any]:
    """Run (or resume) the recipe at `path`; returns the summary also written to summary.json
    (or, for a recipe with `levels:`, the ARISE result written to arise.json). `force` resumes
    although a chat template or package version changed since the run began."""
    recipe = load_recipe(path, overrides)
    if recipe.levels is not None:
        from tts.evals.levels import run_levels

        return await run_levels(recipe, run_dir_for(recipe, out), limit, progress, force)
    return await run_pieces(build_pieces(recipe), run_dir_for(recipe, out), limit=limit, progress=progress,
                            force=force)


async def run_pieces(pieces: Pieces, run_dir: Path, **controller_args: Any) -> dict[str, Any]:
    """Run built pieces into `run_dir` (Controller arguments: limit, progress, only, manage_backends,
    ledger, force) and return the summary written to summary.json."""
    from tts.evals.summary import summarize_outcome

    outcome = await Controller(pieces, Path(run_dir), **controller_args).run()
    return summarize_outcome(outcome, pieces.recipe, pieces.sweep_aggregators)
