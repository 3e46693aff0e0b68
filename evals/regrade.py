"""Re-extract and re-grade a stored run from its candidates' texts, without calling any model: for
a grader or extractor fixed after the run, or to compare grading rules on the same samples. The
final answer is re-chosen by the run's own aggregator where it is a pure function of the answers
(majority, weighted, best), else it stays the candidate the strategy picked. Writes
`records.regraded.jsonl` and `summary.regraded.json` beside the originals; changes nothing else."""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts.evals.summary import candidates_of, summarize_run_dir
from tts.types import Problem

log = logging.getLogger(__name__)
REGRADED_RECORDS = "records.regraded.jsonl"
REGRADED_SUMMARY = "summary.regraded.json"


class RegradeError(ValueError):
    """A run that cannot be re-graded as asked (no texts kept, not a run folder)."""


@dataclass
class Changes:
    """What a re-grade changed, counted over candidates and final answers."""

    candidates: int = 0
    candidate_answers: int = 0
    candidate_grades: int = 0
    final_answers: int = 0
    final_grades: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


def _problems(pieces: Any, records: list[dict[str, Any]]) -> dict[str, Problem]:
    """Problems by id: from the dataset when it loads (the grader may read the question), else
    rebuilt from the records' references."""
    try:
        loaded = {p.id: p for p in pieces.dataset.load()}
    except Exception as exc:  # offline, moved data: grading needs only the reference
        log.warning("dataset did not load (%s); grading from the stored references alone", exc)
        loaded = {}
    return {r["id"]: loaded.get(r["id"]) or Problem(r["id"], "", r.get("reference")) for r in records}


def _rechoose(record: dict[str, Any], cands: list[Any], aggregator: Any, seed: int) -> str | None:
    """The final answer under the new answers: the run's aggregator again if it is pure (the stored
    answer stays while it is still among the tied winners), else the answer of the candidate the
    strategy chose (or the stored answer when it named none)."""
    if hasattr(aggregator, "choose") and cands:
        if record.get("answer") in aggregator.winners(cands):
            return record.get("answer")  # still a winner: the run's own tie-break stands
        rng = random.Random(f"{seed}:{record['id']}")
        return aggregator.choose(cands, rng).answer
    index = record.get("answer_candidate")
    chosen = next((c for c in cands if c.index == index), None)
    return chosen.answer if chosen is not None else record.get("answer")


async def _regrade_record(record: dict[str, Any], problem: Problem, extractor: Any, grader: Any,
                          aggregator: Any, seed: int, reextract: bool, changes: Changes) -> dict[str, Any]:
    new = json.loads(json.dumps(record))
    cands = candidates_of(new)
    if reextract:
        for c, stored in zip(cands, new["candidates"]):
            c.answer = extractor.extract(stored["text"])
    final = _rechoose(new, cands, aggregator, seed) if reextract else new.get("answer")
    grades = await grader.grade(problem, [final] + [c.answer for c in cands])
    for c, stored, g in zip(cands, new["candidates"], grades[1:]):
        changes.candidates += 1
        changes.candidate_answers += c.answer != stored.get("answer")
        changes.candidate_grades += g != stored.get("grade")
        stored["answer"], stored["grade"] = c.answer, g
    changes.final_answers += final != record.get("answer")
    if grades[0] != record.get("grade"):
        changes.final_grades += 1
        if len(changes.examples) < 10:
            changes.examples.append({"id": record["id"], "reference": record.get("reference"),
                                     "before": record.get("answer"), "after": final, "grade": grades[0]})
    new["answer"], new["grade"] = final, grades[0]
    return new


async def regrade_run(run_dir: Path, extractor_spec: Any = None, grader_spec: Any = None) -> dict[str, Any]:
    """Re-grade `run_dir` (extractor and grader from the lock unless given); returns the report."""
    import yaml

    from tts.build import check_recipe
    from tts.components import build
    from tts.recipe import parse_recipe
    from tts.records import read_records

    lock_path = Path(run_dir) / "recipe.lock.yaml"
    if not lock_path.exists():
        raise RegradeError(f"{run_dir} is not a run folder (no recipe.lock.yaml)")
    recipe = parse_recipe(yaml.safe_load(lock_path.read_text(encoding="utf-8"))["recipe"], str(lock_path))
    pieces = check_recipe(recipe)
    extractor = build("extractors", extractor_spec, "--extractor") if extractor_spec is not None else pieces.extractor
    grader = build("graders", grader_spec, "--grader") if grader_spec is not None else pieces.grader
    if getattr(grader, "roles", ()):
        raise RegradeError(f"grader '{grader.name}' calls a model ({', '.join(grader.roles)}); tts regrade calls "
                           "none: re-grade with a rule grader, or rerun the recipe")
    records = read_records(run_dir)
    ok = [r for r in records if r.get("status") == "ok"]
    problems = _problems(pieces, ok)
    aggregator = getattr(pieces.strategy, "aggregator", None)
    texts = all("text" in c for r in ok for c in r.get("candidates", []))
    if not texts and extractor_spec is not None:
        raise RegradeError(f"{run_dir}: candidates keep no text (the run had output.store_text: false); "
                           "only --grader can be changed")
    changes = Changes()
    regraded = {}
    try:
        for r in ok:
            regraded[r["id"]] = await _regrade_record(r, problems[r["id"]], extractor, grader, aggregator,
                                                      recipe.seed, texts, changes)
    finally:
        await grader.close()
    new_records = [regraded.get(r["id"], r) for r in records]
    return _write(Path(run_dir), recipe, records, new_records, changes, extractor_spec, grader_spec)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("tts-scaling", "math-verify", "sympy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _accuracy(summary: dict[str, Any]) -> float | None:
    acc = summary.get("accuracy")
    return acc["mean"] if acc else None


def _write(run_dir: Path, recipe: Any, old: list[dict[str, Any]], new: list[dict[str, Any]], changes: Changes,
           extractor_spec: Any, grader_spec: Any) -> dict[str, Any]:
    (run_dir / REGRADED_RECORDS).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new), encoding="utf-8")
    before = summarize_run_dir(run_dir, recipe, old)
    after = summarize_run_dir(run_dir, recipe, new)
    report = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.platform(),
        "versions": _versions(),
        "extractor": extractor_spec if extractor_spec is not None else recipe.extractor,
        "grader": grader_spec if grader_spec is not None else recipe.grader,
        "problems": len([r for r in old if r.get("status") == "ok"]),
        "changed": {k: v for k, v in changes.__dict__.items() if k != "examples"},
        "examples": changes.examples,
        "accuracy_before": _accuracy(before), "accuracy_after": _accuracy(after),
    }
    after["regraded"] = report
    (run_dir / REGRADED_SUMMARY).write_text(json.dumps(after, indent=2), encoding="utf-8")
    report["summary_before"], report["summary_after"] = before, after
    return report


def regrade(run_dir: Path, extractor_spec: Any = None, grader_spec: Any = None) -> dict[str, Any]:
    """Synchronous entry point for the command line."""
    return asyncio.run(regrade_run(run_dir, extractor_spec, grader_spec))
