"""Traces for cost planning: per model (or setting) and problem, the prompt length and each sample's
generated tokens, grade and answer. Read from run folders or from a JSONL file, one line per
(model, problem): {"model", "shape": {...}, "problem", "prompt_tokens", "samples": [{"tokens",
"correct", "answer"}]}; `shape` holds `ModelShape` fields (params, active_params, num_layers, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tts.cost.shape import ModelShape
from tts.records import read_records


@dataclass
class ProblemTraces:
    problem: str
    prompt_tokens: int
    tokens: list[int]
    correct: list[float]
    answers: list[str | None] = field(default_factory=list)


@dataclass
class TraceSet:
    """All traces of one model or setting, with the shape that prices them."""

    label: str
    shape: ModelShape
    problems: dict[str, ProblemTraces] = field(default_factory=dict)

    @property
    def min_samples(self) -> int:
        return min((len(p.tokens) for p in self.problems.values()), default=0)


class TraceError(ValueError):
    """A run folder or traces file that cannot be planned from (one line saying why)."""


def _shape(data: dict, where: str) -> ModelShape:
    try:
        data = dict(data)
        data.setdefault("active_params", data.get("params"))
        return ModelShape(**data)
    except TypeError as exc:
        raise TraceError(f"{where}: bad model shape: {exc}") from None


def from_run(run_dir: Path, label: str | None = None) -> TraceSet:
    """Traces of a finished run: its candidates (with grades) and the generating role's shape."""
    levels = sorted(Path(run_dir).glob("level-*/run-*"))
    if levels and not (Path(run_dir) / "records.jsonl").exists():
        raise TraceError(f"{run_dir} is a levels (ARISE) run: give its runs instead, e.g. --runs {levels[0]}")
    lock = Path(run_dir) / "recipe.lock.yaml"
    if not lock.exists():
        raise TraceError(f"{run_dir} is not a run folder (no recipe.lock.yaml)")
    meta = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    shapes = meta.get("shapes") or {}
    records = [r for r in read_records(run_dir) if r.get("status") == "ok" and r.get("candidates")]
    if not records:
        raise TraceError(f"{run_dir}: no finished problem with candidates")
    role = records[0]["candidates"][0].get("role", "policy")
    if role not in shapes:
        raise TraceError(f"{run_dir}: the lock has no model shape for role '{role}' (made before tts "
                         f"recorded shapes; rerun it, or export traces with a 'shape' field)")
    models = meta.get("recipe", {}).get("roles", {})
    out = TraceSet(label or f"{Path(run_dir).name} ({models.get(role, {}).get('model', role)})",
                   _shape(shapes[role], str(lock)))
    for r in records:
        cands = [c for c in r["candidates"] if c.get("role", role) == role]
        out.problems[r["id"]] = ProblemTraces(
            r["id"], int(cands[0].get("prompt_tokens", 0)), [int(c["completion_tokens"]) for c in cands],
            [float(c.get("grade") or 0.0) for c in cands], [c.get("answer") for c in cands])
    return out


def read_traces(path: Path) -> list[TraceSet]:
    """Trace sets from a JSONL traces file (format in the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"traces file not found: {path}")
    sets: dict[str, TraceSet] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            row = json.loads(line)
            label, samples = str(row["model"]), row["samples"]
            ts = sets.setdefault(label, TraceSet(label, _shape(row["shape"], where)))
            ts.problems[str(row["problem"])] = ProblemTraces(
                str(row["problem"]), int(row.get("prompt_tokens", 0)), [int(s["tokens"]) for s in samples],
                [float(s["correct"]) for s in samples], [s.get("answer") for s in samples])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TraceError(f"{where}: {type(exc).__name__}: {exc}") from None
    if not sets:
        raise TraceError(f"{path}: no traces")
    return list(sets.values())


def write_traces(sets: list[TraceSet], path: Path) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for ts in sets:
            for p in ts.problems.values():
                samples = [{"tokens": t, "correct": c, "answer": a}
                           for t, c, a in zip(p.tokens, p.correct, p.answers or [None] * len(p.tokens))]
                fh.write(json.dumps({"model": ts.label, "shape": ts.shape.to_dict(), "problem": p.problem,
                                     "prompt_tokens": p.prompt_tokens, "samples": samples}) + "\n")
