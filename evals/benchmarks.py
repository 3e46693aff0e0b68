"""Math benchmark loaders: math500, aime24, aime25, amc23, gsm8k. Users get them from the hub
through `datasets`; tests and offline machines read the same sets as local JSONL (`path:` or
`TTS_DATA_DIR`, laid out as in the project's offline copies). Ids are stable across both."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts.evals.datasets import DatasetError, read_jsonl
from tts.types import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    hub_id: str
    hub_config: str | None
    hub_split: str
    local: str  # path under TTS_DATA_DIR
    prefix: str


SOURCES = {
    "math500": Source("HuggingFaceH4/MATH-500", None, "test", "math500/test.jsonl", ""),
    "aime24": Source("HuggingFaceH4/aime_2024", None, "train", "aime2024/test.jsonl", "aime2024"),
    "aime25": Source("math-ai/aime25", None, "test", "aime2025/test.jsonl", "aime2025"),
    "amc23": Source("math-ai/amc23", None, "test", "amc2023/test.jsonl", "amc2023"),
    "gsm8k": Source("openai/gsm8k", "main", "test", "gsm8k/test.jsonl", "gsm8k-test"),
}


def _hub_id(name: str, src: Source, row: dict[str, Any], index: int) -> str:
    """Stable id for a hub row, matching the offline copies' scheme where the row allows."""
    if name == "math500":
        return str(row.get("unique_id", index))
    if name == "gsm8k":
        return f"{src.prefix}-{index:04d}"
    url = str(row.get("url", ""))
    m = re.search(r"(\d{4})_AMC_(12[AB])_Problems/Problem_(\d+)", url) or \
        re.search(r"(\d{4})_AIME_(I+)_Problems/Problem_(\d+)", url)
    if m:
        return f"{src.prefix}-{m.group(2)}-{int(m.group(3)):02d}"
    return f"{src.prefix}-{row.get('id', index)}"


def _hub_row(name: str, row: dict[str, Any]) -> tuple[str, str, str | None]:
    problem = row.get("problem") or row.get("question") or ""
    answer = row.get("answer")
    if name == "gsm8k" and isinstance(answer, str) and "####" in answer:
        solution, answer = answer, answer.split("####")[-1].strip().replace(",", "")
        return problem, answer, solution
    return problem, None if answer is None else str(answer), row.get("solution")


class Benchmark:
    """A math benchmark by name; `source` is auto (local if found, else hub), local or hub."""

    def __init__(self, name: str, path: str | None = None, source: str = "auto",
                 subject: str | None = None, level: int | None = None) -> None:
        if name not in SOURCES:
            raise ValueError(f"unknown benchmark '{name}' (known: {', '.join(SOURCES)})")
        if source not in ("auto", "local", "hub"):
            raise ValueError(f"source must be auto, local or hub, got '{source}'")
        if path and not Path(os.path.expanduser(path)).is_file():  # an explicit path never falls back to the hub
            raise ValueError(f"dataset file not found: {path}")
        self.bench, self.path, self.source = name, path, source
        self.subject, self.level = subject, level

    def _local_path(self) -> Path | None:
        if self.path:
            return Path(os.path.expanduser(self.path))
        root = os.environ.get("TTS_DATA_DIR")
        return Path(root) / SOURCES[self.bench].local if root else None

    def load(self) -> list[Problem]:
        local = self._local_path()
        if self.source == "local" or (self.source == "auto" and local is not None and local.exists()):
            if local is None:
                raise DatasetError(f"{self.bench}: source is local but no path and no TTS_DATA_DIR")
            problems = self._from_local(local)
        else:
            problems = self._from_hub()
        return [p for p in problems if self._keep(p)]

    def _keep(self, p: Problem) -> bool:
        if self.subject and p.meta.get("subject") != self.subject:
            return False
        return not (self.level and p.meta.get("level") != self.level)

    def _from_local(self, path: Path) -> list[Problem]:
        rows = read_jsonl(path)
        return [Problem(str(r["id"]), r["problem"], str(r["answer"]),
                        {k: v for k, v in r.items() if k not in ("id", "problem", "answer")}) for r in rows]

    def _from_hub(self) -> list[Problem]:
        src = SOURCES[self.bench]
        try:
            import datasets

            ds = datasets.load_dataset(src.hub_id, src.hub_config, split=src.hub_split)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"{self.bench}: cannot load {src.hub_id} from the hub ({first}); "
                               f"offline, set TTS_DATA_DIR or give dataset.path") from None
        out = []
        for i, row in enumerate(ds):
            problem, answer, solution = _hub_row(self.bench, row)
            meta = {k: v for k, v in row.items() if k in ("subject", "level", "url")}
            if solution:
                meta["solution"] = solution
            out.append(Problem(_hub_id(self.bench, src, row, i), problem, answer, meta))
        return out


def _factory(name: str):
    def make(path: str | None = None, source: str = "auto", subject: str | None = None,
             level: int | None = None) -> Benchmark:
        return Benchmark(name, path, source, subject, level)

    make.__name__ = f"load_{name}"
    make.__doc__ = f"The {name} benchmark (hub id {SOURCES[name].hub_id}, or local JSONL)."
    return make


load_math500, load_aime24, load_aime25, load_amc23, load_gsm8k = (_factory(n) for n in SOURCES)


class ToyArithmetic:
    """Held-out toy arithmetic problems (never seen in training), generated from a fixed seed."""

    name = "toy_arith"

    def __init__(self, count: int = 300, n_ops: int = 2, offset: int = 0) -> None:
        from tts.toy.task import TEST_SIZE

        if not 1 <= count + offset <= TEST_SIZE:
            raise ValueError(f"count + offset must be within the {TEST_SIZE} held-out problems")
        self.count, self.n_ops, self.offset = count, n_ops, offset

    def load(self) -> list[Problem]:
        from tts.toy.task import TEST_SEED, TEST_SIZE, problems

        chosen = problems(TEST_SIZE, TEST_SEED, self.n_ops)[self.offset: self.offset + self.count]
        return [Problem(f"toy{self.n_ops}-{self.offset + i:04d}", p.text, str(p.answer), {"chain": p.chain})
                for i, p in enumerate(chosen)]
