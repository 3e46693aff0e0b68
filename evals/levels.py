"""Runs of a recipe with `levels:` (ARISE): the recipe field named by `levels.field` takes each value
in turn; every (problem, level) cell is run `min_runs` times with different seeds, then again, one
round at a time, while its accuracy/token coefficient of variation stays above the threshold (up to
`max_runs`, or a per-cell cap from `total_runs`). Each (level, run) is an ordinary run folder
`level-J/run-R`, so a killed levels run resumes like any run; engines are shared by all of them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tts.evals.arise import AdaptiveSampler, allocate_budget, score_cells
from tts.evals.summary import summarize_outcome
from tts.build import build_pieces
from tts.controller import Controller, close_backends, start_backends
from tts.lock import check_resumable, write_lock
from tts.progress import log as progress_log
from tts.progress import mode_for
from tts.recipe import Recipe, apply_override, parse_recipe
from tts.records import RecordStore

log = logging.getLogger(__name__)
Cells = dict[str, list[list[tuple[float, float]]]]


def level_recipe(recipe: Recipe, level: int, run: int, run_dir: Path) -> Recipe:
    """The plain recipe of one (level, run): the level's value set, seed offset by the run."""
    assert recipe.levels is not None
    data = recipe.resolved()
    data["levels"] = None
    data["seed"] = recipe.seed + run
    data["output"] = {**data["output"], "dir": str(run_dir / f"level-{level}"), "name": f"run-{run}"}
    value = recipe.levels.values[level]
    apply_override(data, f"{recipe.levels.field}={_yaml(value)}")
    return parse_recipe(data, f"levels.values.{level} ({recipe.levels.field}={value})")


def _yaml(value: Any) -> str:
    import json

    return json.dumps(value)


def _tokens(record: dict[str, Any], mode: str) -> float:
    costs = record.get("cost", {}).values()
    if mode == "completion":
        return float(sum(t.get("completion_tokens", 0) for t in costs))
    return float(sum(t.get("prompt_tokens", 0) + t.get("cached_tokens", 0) + t.get("completion_tokens", 0)
                     for t in costs))


def collect_cells(run_dir: Path, n_levels: int, tokens: str = "total") -> Cells:
    """Runs per problem per level, `(grade, tokens)`, read from the sub-run records; only problems
    with at least one finished run at every level are kept."""
    cells: dict[str, list[list[tuple[float, float]]]] = {}
    for j in range(n_levels):
        for sub in sorted((Path(run_dir) / f"level-{j}").glob("run-*")):
            for pid, rec in RecordStore(sub).load().items():
                if rec.get("status") == "ok":
                    cells.setdefault(pid, [[] for _ in range(n_levels)])[j].append(
                        (float(rec.get("grade") or 0.0), _tokens(rec, tokens)))
    return {pid: runs for pid, runs in cells.items() if all(runs)}


def _wanting(cells: Cells, level: int, sampler: AdaptiveSampler, caps: dict[tuple[str, int], int]) -> set[str]:
    return {pid for pid, runs in cells.items()
            if sampler.wants_more(runs[level], caps.get((pid, level), sampler.m_max))}


async def run_levels(recipe: Recipe, run_dir: Path, limit: int | None = None,
                     progress: bool | str = False, force: bool = False) -> dict[str, Any]:
    """Run every level adaptively into `run_dir`; returns (and writes `arise.json`) the scores. Off a
    terminal, progress is one line per level run (not ten per run)."""
    spec = recipe.levels
    mode = mode_for(progress)
    assert spec is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "recipe.lock.yaml"
    check_resumable(lock, recipe.resolved())
    sampler = AdaptiveSampler(spec.min_runs, spec.max_runs, spec.threshold)
    recipes = [[level_recipe(recipe, j, r, run_dir) for r in range(spec.max_runs)]
               for j in range(len(spec.values))]
    backends: dict[str, Any] = {}
    caps: dict[tuple[str, int], int] = {}
    try:
        for r in range(spec.max_runs):
            cells = collect_cells(run_dir, len(spec.values), spec.tokens)
            if r == spec.min_runs and spec.total_runs:
                caps = _caps(cells, sampler, spec.total_runs)
            wanted = [None if r < spec.min_runs else _wanting(cells, j, sampler, caps)
                      for j in range(len(spec.values))]
            if all(w is not None and not w for w in wanted):
                break  # every cell has settled (or reached its cap)
            for j, only in enumerate(wanted):
                if only is not None and not only:
                    continue
                pieces = build_pieces(recipes[j][r], backends=backends)
                if r == 0 and j == 0 and not lock.exists():
                    write_lock(lock, recipe.resolved(), {})
                await start_backends(pieces)
                progress_log.info("level %d (%s=%s), run %d: %s problems", j, spec.field, spec.values[j], r,
                                  "all" if only is None else len(only))
                outcome = await Controller(pieces, run_dir / f"level-{j}" / f"run-{r}", limit,
                                           "off" if mode == "log" else mode, only=only, manage_backends=False,
                                           force=force).run()
                summarize_outcome(outcome, pieces.recipe, pieces.sweep_aggregators)
    finally:
        await close_backends(backends.values())
    return write_arise(run_dir, recipe)


def _caps(cells: Cells, sampler: AdaptiveSampler, total: int) -> dict[tuple[str, int], int]:
    """Budgeted variant: runs per cell from the probe runs' CVs (the probe runs are kept)."""
    cvs = {(pid, j): sampler.cv(runs[j]) for pid, runs in cells.items() for j in range(len(runs))}
    return allocate_budget(cvs, total, sampler.m_min, sampler.m_max)


def arise_of(run_dir: Path, recipe: Recipe) -> dict[str, Any]:
    """ARISE, slope and per-level figures of a finished (or partial) levels run."""
    spec = recipe.levels
    assert spec is not None
    cells = collect_cells(run_dir, len(spec.values), spec.tokens)
    if not cells:
        raise FileNotFoundError(f"{run_dir}: no problem has finished runs at every level yet")
    models = sorted({r.model for r in recipe.roles.values()})
    return {"recipe": recipe.name, "run_dir": str(run_dir), "models": models, "field": spec.field,
            "values": spec.values, "tokens": spec.tokens, **score_cells(cells)}


def write_arise(run_dir: Path, recipe: Recipe) -> dict[str, Any]:
    import json

    result = arise_of(run_dir, recipe)
    (run_dir / "arise.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
