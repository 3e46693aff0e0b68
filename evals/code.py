"""Code benchmark loaders: HumanEval (164) and MBPP sanitized (427; `split: test` is the paper's
257). Local JSONL through `path:` or `TTS_DATA_DIR` (the project's offline copies), else the hub
through `datasets`. Hidden tests live in `meta` for the grader; public tests (HumanEval's
docstring examples, MBPP's first assert) are what selectors may use."""

from __future__ import annotations

from tts.evals.datasets import local_or_hub_rows
from tts.types import Problem


class HumanEval:
    """HumanEval: the model completes `prompt`; graded by `prompt + completion + test + check(entry_point)`."""

    name = "humaneval"

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def load(self) -> list[Problem]:
        rows = local_or_hub_rows("humaneval", self.path, "humaneval/test.jsonl", ("openai_humaneval", None, "test"))
        return [Problem(str(r.get("id") or r["task_id"]), r["prompt"], None,
                        {"kind": "humaneval", "prompt": r["prompt"], "entry_point": r["entry_point"],
                         "test": r["test"], "reference_solution": r["canonical_solution"]}) for r in rows]


class MBPP:
    """MBPP sanitized: the problem text shows the first assert (the public test, which names the
    function); graded by test_imports + program + every assert of test_list."""

    name = "mbpp"

    def __init__(self, path: str | None = None, split: str | None = "test") -> None:
        self.path, self.split = path, split

    def load(self) -> list[Problem]:
        rows = local_or_hub_rows("mbpp", self.path, "mbpp_sanitized/all.jsonl", ("google-research-datasets/mbpp", "sanitized",
                                                                      self.split or "test"))
        out = []
        for r in rows:
            split = r.get("split", self.split)
            if self.split and split != self.split:
                continue
            tests = list(r["test_list"])
            text = r.get("problem") or r.get("prompt") or r.get("text")
            pid = str(r.get("id") or f"mbpp-{r['task_id']}")
            out.append(Problem(pid, f"{text}\nYour code should pass this test:\n{tests[0]}", None,
                               {"kind": "mbpp", "test_list": tests, "test_imports": list(r.get("test_imports") or []),
                                "public_tests": tests[:1], "reference_solution": r.get("solution") or r.get("code")}))
        return out
