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


def local_or_hub_rows(name: str, path: str | None, default: str, hub: tuple[str, str | None, str]) -> list[dict[str, Any]]:
    """Rows of a benchmark: `path`, else `TTS_DATA_DIR/default` when present, else the hub
    (`hub` = id, config, split) through `datasets`; one line naming what to do when none works."""
    root = os.environ.get("TTS_DATA_DIR")
    local = Path(os.path.expanduser(path)) if path else (Path(root) / default if root else None)
    if local is not None and local.exists():
        return read_jsonl(local)
    if path:
        raise DatasetError(f"{name}: dataset file not found: {local}")
    try:
        import datasets

        return [dict(r) for r in datasets.load_dataset(hub[0], hub[1], split=hub[2])]
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{name}: cannot load {hub[0]} from the hub ({first}); offline, set TTS_DATA_DIR "
                           "or give dataset.path") from None


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
