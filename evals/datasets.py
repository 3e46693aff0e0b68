"""Dataset loaders. `jsonl` reads any local JSONL file into Problems with stable ids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tts.types import Problem


class DatasetError(ValueError):
    """A dataset that cannot be read; one line naming the file and the fault."""


def data_path(path: str) -> Path:
    """Resolve a relative path against `TTS_DATA_DIR` when it is set and the file is there."""
    p = Path(os.path.expanduser(path))
    root = os.environ.get("TTS_DATA_DIR")
    if not p.is_absolute() and root and (Path(root) / p).exists():
        return Path(root) / p
    return p


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise DatasetError(f"dataset file not found: {path}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows


class JsonlDataset:
    """Problems from a JSONL file; field names are configurable, ids default to the line index."""

    name = "jsonl"

    def __init__(self, path: str, id_field: str = "id", problem_field: str = "problem",
                 answer_field: str = "answer") -> None:
        self.path, self.id_field = path, id_field
        self.problem_field, self.answer_field = problem_field, answer_field

    def load(self) -> list[Problem]:
        path = data_path(self.path)
        problems, seen = [], set()
        for i, row in enumerate(read_jsonl(path)):
            if self.problem_field not in row:
                raise DatasetError(f"{path}: line {i + 1} has no '{self.problem_field}' field")
            pid = str(row.get(self.id_field, f"{path.stem}-{i}"))
            if pid in seen:
                raise DatasetError(f"{path}: duplicate id '{pid}'")
            seen.add(pid)
            answer = row.get(self.answer_field)
            meta = {k: v for k, v in row.items() if k not in (self.id_field, self.problem_field, self.answer_field)}
            problems.append(Problem(pid, str(row[self.problem_field]),
                                    None if answer is None else str(answer), meta))
        return problems
