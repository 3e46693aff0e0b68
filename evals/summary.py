"""Run summaries from records: accuracy, failures, cost per problem and role, and the sweep table
(N against accuracy per aggregator, pass@N, tokens and seconds per problem, with intervals)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from dataclasses import dataclass

from tts.evals.metrics import aggregators_at_k, mean_ci, paired_bootstrap, pass_at_k
from tts.cost.shape import ModelShape
from tts.ledger import GRADER_ROLE_PREFIX, Totals
from tts.types import Candidate


def candidates_of(record: dict[str, Any]) -> list[Candidate]:
    """Rebuild candidates (answers, scores, grades, token counts) from a stored record."""
    return [Candidate(problem_id=record["id"], index=c["index"], role=c.get("role", ""),
                      seed=c.get("seed"), token_ids=[], text=c.get("text", ""), answer=c.get("answer"),
                      scores=c.get("scores", {}), grade=c.get("grade"),
                      completion_tokens=c.get("completion_tokens", 0),
                      prompt_tokens=c.get("prompt_tokens", 0), iid=c.get("iid", True))
            for c in record.get("candidates", [])]


def _ci(values: list[float]) -> dict[str, float]:
    mean, lo, hi = mean_ci(values)
    return {"mean": mean, "lo": lo, "hi": hi}


def _eflops(record: dict[str, Any]) -> float:
    """The strategy's eFLOPs of one record (a grader's own model calls are not test-time compute)."""
    return sum(t.get("eflops", 0.0) for role, t in record.get("cost", {}).items()
               if not role.startswith(GRADER_ROLE_PREFIX))


@dataclass
class Pricing:
    """Prices N samples of a problem from the run's cost model and the generating role's shape, so
    a sweep's smaller N are costed as if run on their own (shared prompt terms paid once per N)."""

    cost_model: Any
    shapes: dict[str, ModelShape]

    @classmethod
    def from_lock(cls, cost_model: Any, lock: dict[str, Any]) -> "Pricing":
        return cls(cost_model, {role: ModelShape(**s) for role, s in (lock.get("shapes") or {}).items()})

    def at_n(self, cands: list[Candidate], k: int) -> float | None:
        shape = self.shapes.get(cands[0].role)
        if shape is None or not hasattr(self.cost_model, "expected"):
            return None
        return self.cost_model.expected(shape, cands[0].prompt_tokens, [c.completion_tokens for c in cands], k)


def _eflops_at(record: dict[str, Any], cands: list[Candidate], k: int, pricing: Pricing | None) -> float:
    priced = pricing.at_n(cands, k) if pricing is not None else None
    return priced if priced is not None else _eflops(record) * k / len(cands)


def sweep_table(ok: list[dict[str, Any]], ns: list[int], aggregators: list[Any], subsets: int,
                seed: int, pricing: Pricing | None = None) -> dict[str, Any]:
    """Per N: each aggregator's accuracy, pass@N and tokens per problem, from one run at the largest N."""
    cands = [candidates_of(r) for r in ok]
    usable = [(r, c) for r, c in zip(ok, cands) if c and all(x.iid for x in c)]
    rows, per_problem = [], {}
    for k in ns:
        eligible = [(r, c) for r, c in usable if len(c) >= k]
        if not eligible:
            continue
        row: dict[str, Any] = {"n": k, "problems": len(eligible)}
        # each problem's subsets come from its own stream and are shared by every aggregator
        by_problem = [aggregators_at_k(aggregators, c, k, subsets, random.Random(f"{seed}:{r['id']}:{k}"))
                      for r, c in eligible]
        for j, agg in enumerate(aggregators):
            vals = [v[j] for v in by_problem]
            row[agg.name] = _ci(vals)
            per_problem[(agg.name, k)] = {r["id"]: v for (r, _), v in zip(eligible, vals)}
        row["pass"] = _ci([pass_at_k(len(c), sum(1 for x in c if (x.grade or 0) > 0), k) for _, c in eligible])
        row["tokens_per_problem"] = sum(
            c[0].prompt_tokens + k * sum(x.completion_tokens for x in c) / len(c) for _, c in eligible
        ) / len(eligible)
        # priced at N from the observed lengths (or, without shapes, scaled from the largest N)
        row["eflops_per_problem"] = sum(_eflops_at(r, c, k, pricing) for r, c in eligible) / len(eligible)
        rows.append(row)
    acc1 = {r["id"]: sum((x.grade or 0) for x in c) / len(c) for r, c in usable}
    gains = {}
    for (name, k), vals in per_problem.items():
        if k == max(ns) and vals:
            ids = sorted(vals)
            mean, lo, hi = paired_bootstrap([vals[i] for i in ids], [acc1[i] for i in ids])
            gains[f"{name}@{k} - acc@1"] = {"mean": mean, "lo": lo, "hi": hi, "problems": len(ids)}
    return {"rows": rows, "paired_gain_vs_single_sample": gains}


def summarize(records: list[dict[str, Any]], recipe: Any, sweep_aggregators: list[Any],
              cost_model: str = "", pricing: Pricing | None = None) -> dict[str, Any]:
    """Summary dict of a run (written as summary.json and printed by `tts run` / `tts show`). Records
    are taken in problem-id order, so the figures do not depend on the order problems finished in."""
    records = sorted(records, key=lambda r: str(r["id"]))
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") != "ok"]
    by_role: dict[str, Totals] = {}
    for r in records:
        for role, t in r.get("cost", {}).items():
            by_role.setdefault(role, Totals())
            for key, value in Totals.from_dict(t).__dict__.items():
                setattr(by_role[role], key, getattr(by_role[role], key) + value)
    n = max(len(records), 1)
    grading = {k: v for k, v in by_role.items() if k.startswith(GRADER_ROLE_PREFIX)}
    strategy = {k: v for k, v in by_role.items() if k not in grading}
    summary: dict[str, Any] = {
        "recipe": recipe.name, "problems": len(records), "ok": len(ok), "failed": len(failed),
        "failed_ids": [r["id"] for r in failed][:20],
        "accuracy": _ci([float(r.get("grade") or 0.0) for r in ok]) if ok else None,
        "tokens_per_problem": sum(t.tokens for t in strategy.values()) / n,
        "seconds_per_problem": sum(r.get("seconds", 0.0) for r in records) / n,
        "eflops_per_problem": sum(t.eflops for t in strategy.values()) / n,
        "cost_model": cost_model,
        "cost_by_role": {k: v.to_dict() for k, v in by_role.items()},
    }
    if grading:  # a model judge in the grader: its cost is shown, not counted as test-time compute
        summary["grading_eflops_per_problem"] = sum(t.eflops for t in grading.values()) / n
    if recipe.sweep and ok:
        summary["sweep"] = sweep_table(ok, recipe.sweep.n, sweep_aggregators, recipe.sweep.subsets,
                                       recipe.seed, pricing)
    return summary


def sweep_columns(sweep: dict[str, Any]) -> list[str]:
    """The accuracy columns of a sweep table (aggregators and pass@N): the entries holding intervals."""
    return [k for k, v in sweep["rows"][0].items() if isinstance(v, dict)] if sweep.get("rows") else []


SUMMARY_SCHEMA = 2  # bump when the figures a summary holds are computed differently


def records_digest(run_dir: Path) -> str:
    """sha256 of the run's records file: a summary written with it describes exactly these records."""
    import hashlib

    digest = hashlib.sha256()
    with open(Path(run_dir) / "records.jsonl", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_summary(run_dir: Path, summary: dict[str, Any], covers_all: bool = False) -> None:
    """Write summary.json; `covers_all` (every stored record was summarised) stamps it with the records'
    digest so `tts show` can print it without recomputing."""
    if covers_all:
        summary = {**summary, "records_sha256": records_digest(run_dir), "summary_schema": SUMMARY_SCHEMA}
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")


def stored_summary(run_dir: Path) -> dict[str, Any] | None:
    """summary.json when it was written from exactly the records now in the folder, else None."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("summary_schema") != SUMMARY_SCHEMA or not (Path(run_dir) / "records.jsonl").exists():
        return None
    return summary if summary.get("records_sha256") == records_digest(run_dir) else None


def cost_model_of(run_dir: Path) -> str:
    """The cost model a run was priced with, as its summary names it ('' when unknown)."""
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")).get("cost_model", "") if path.exists() else ""


def summarize_run_dir(run_dir: Path, recipe: Any, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The summary of a finished run folder, recomputed from its records (read here unless given),
    priced from its lock."""
    import yaml

    from tts.build import check_recipe
    from tts.records import read_records

    pieces = check_recipe(recipe)
    lock = yaml.safe_load((Path(run_dir) / "recipe.lock.yaml").read_text(encoding="utf-8")) or {}
    records = read_records(run_dir) if records is None else records
    return summarize(records, recipe, pieces.sweep_aggregators, cost_model_of(run_dir),
                     Pricing.from_lock(pieces.cost_model, lock))


def summarize_outcome(outcome: Any, recipe: Any, sweep_aggregators: list[Any]) -> dict[str, Any]:
    """The summary of a controller run's selection, written to summary.json: the stored one when
    nothing ran and it still matches the records, else computed (priced from the roles' shapes, or
    from the lock when no model was loaded)."""
    import yaml

    from tts.records import RecordStore

    run_dir, wanted = Path(outcome.run_dir), set(outcome.problem_ids)
    stored = RecordStore(run_dir).load()
    extra = {"wall_seconds_this_run": outcome.wall_seconds, "start_seconds_this_run": outcome.start_seconds,
             "problems_this_run": outcome.problems_this_run}
    if outcome.shapes is None:
        cached = stored_summary(run_dir)
        if cached is not None and set(stored) == wanted:
            return {**cached, **extra}
        lock = yaml.safe_load((run_dir / "recipe.lock.yaml").read_text(encoding="utf-8")) or {}
        pricing = Pricing.from_lock(outcome.ledger.cost_model, lock)
    else:
        pricing = Pricing(outcome.ledger.cost_model, outcome.shapes)
    records = [r for pid, r in stored.items() if pid in wanted]
    summary = {**summarize(records, recipe, sweep_aggregators, outcome.ledger.cost_name, pricing), **extra}
    write_summary(run_dir, summary, covers_all=len(records) == len(stored))
    return summary
