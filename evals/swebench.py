"""SWE-bench loaders: Lite and Verified from the hub (`princeton-nlp/SWE-bench_Lite`,
`princeton-nlp/SWE-bench_Verified`) or from local JSONL (`path:` / `TTS_DATA_DIR`; the offline
Verified copy holds only five fields, so it cannot be verified locally — use Lite). A problem's
repository is found on disk under `repos_dir/OWNER__NAME` (a git clone holding `base_commit`).

What a strategy may read: the issue text, repo, base commit and the existing tests that passed
before the fix (`PASS_TO_PASS`, for regression checks). `FAIL_TO_PASS`, the test patch and the
gold patch sit under `meta["hidden"]`, for the grader only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tts.evals.datasets import DatasetError, local_or_hub_rows
from tts.types import Problem

VARIANTS = {
    "lite": ("princeton-nlp/SWE-bench_Lite", "swebench_lite/{split}.jsonl"),
    "verified": ("princeton-nlp/SWE-bench_Verified", "swebench_verified/test_partial.jsonl"),
}


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(json.loads(value)) if isinstance(value, str) else list(value)


def repo_dir(repos_dir: str | None, repo: str) -> str | None:
    if not repos_dir:
        return None
    path = Path(os.path.expanduser(repos_dir)) / repo.replace("/", "__")
    return str(path) if (path / ".git").exists() else None


def problem_from_row(row: dict[str, Any], repos_dir: str | None = None) -> Problem:
    return Problem(row["instance_id"], row["problem_statement"], None, {
        "kind": "swebench", "repo": row["repo"], "base_commit": row["base_commit"],
        "version": row.get("version"), "repo_dir": repo_dir(repos_dir, row["repo"]),
        "PASS_TO_PASS": _list(row.get("PASS_TO_PASS")),
        "hidden": {"FAIL_TO_PASS": _list(row.get("FAIL_TO_PASS")), "test_patch": row.get("test_patch"),
                   "gold_patch": row.get("patch")},
    })


class SWEBench:
    """SWE-bench instances; `instances:` keeps only the listed ids (in that order)."""

    name = "swebench"

    def __init__(self, variant: str = "lite", split: str = "test", path: str | None = None,
                 repos_dir: str | None = None, instances: list[str] | None = None) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"swebench variant must be one of {', '.join(VARIANTS)}, got '{variant}'")
        self.variant, self.split, self.path, self.repos_dir, self.instances = variant, split, path, repos_dir, instances

    def load(self) -> list[Problem]:
        hub, local = VARIANTS[self.variant]
        rows = local_or_hub_rows("swebench", self.path, local.format(split=self.split), (hub, None, self.split))
        problems = [problem_from_row(r, self.repos_dir) for r in rows]
        if self.instances:
            by_id = {p.id: p for p in problems}
            missing = [i for i in self.instances if i not in by_id]
            if missing:
                raise DatasetError(f"swebench: instance '{missing[0]}' is not in the {self.variant} {self.split} set")
            problems = [by_id[i] for i in self.instances]
        return problems


class SWEBenchLite(SWEBench):
    """SWE-bench Lite (300 test, 23 dev instances)."""

    def __init__(self, split: str = "test", path: str | None = None, repos_dir: str | None = None,
                 instances: list[str] | None = None) -> None:
        super().__init__("lite", split, path, repos_dir, instances)


class SWEBenchVerified(SWEBench):
    """SWE-bench Verified (500 instances; the offline copy has five fields only)."""

    def __init__(self, split: str = "test", path: str | None = None, repos_dir: str | None = None,
                 instances: list[str] | None = None) -> None:
        super().__init__("verified", split, path, repos_dir, instances)
