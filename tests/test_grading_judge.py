"""The `math` grader's model-judge fallback (`grader: {name: math, judge: ROLE}`): asked only for
text answers the rules call wrong, its verdict is the backend's own P(yes), and its calls are
ledgered as `grader:judge`, shown in the summary but not counted as the strategy's compute."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import tiny_recipe
from tts.budget import Budget
from tts.build import build_pieces
from tts.context import StrategyContext
from tts.runner import run_pieces
from tts.ledger import Ledger
from tts.recipe import parse_recipe
from tts.records import read_records
from tts.types import Problem
from tts.verifiers.math_grader import MathGrader
from tts.verifiers.math_judge import judge_same, needs_judge


class _Recorder:
    """A stand-in role for a control-flow unit test: remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []


async def test_judge_is_asked_only_for_text_the_rules_reject(monkeypatch):
    asked: list[tuple[str, str]] = []

    async def fake_judge(role, problem, answer, reference, template, max_tokens):
        asked.append((answer, reference))
        return answer == "odd function"

    monkeypatch.setattr("tts.verifiers.math_grader.judge_same", fake_judge)

    class Ctx:
        def role(self, name):
            return _Recorder()

    grader = MathGrader(judge="judge")
    try:
        problem = Problem("p", "Is x^3 odd or even?", "\\text{odd}")
        grades = await grader.grade_with(problem, ["odd", "odd function", "even", "odd function", None, "7"], Ctx())
    finally:
        await grader.close()
    assert grades == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert asked == [("odd function", "\\text{odd}"), ("even", "\\text{odd}"), ("7", "\\text{odd}")]  # once each
    assert not needs_judge("7", "8") and not needs_judge("seven", "7") and needs_judge("Monday", "\\text{Tuesday}")


def _text_problems(path: Path) -> Path:
    rows = [{"id": f"t{i}", "problem": f"Name the parity of x^{i}.", "answer": "\\text{odd}" if i % 2 else "\\text{even}"}
            for i in range(1, 5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def test_judge_on_a_real_model_is_ledgered_apart(tiny_model_dir, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, _text_problems(tmp_path / "parity.jsonl"), tmp_path,
                         extractor={"name": "regex", "pattern": "([A-Za-z]{3,})"},
                         grader={"name": "math", "judge": "judge"})
    recipe["roles"]["judge"] = {"model": str(tiny_model_dir), "sampling": {"temperature": 0.0, "max_tokens": 4}}
    pieces = build_pieces(parse_recipe(recipe))
    backend = next(iter(pieces.backends.values()))  # policy and judge share one engine
    await backend.start()
    try:
        summary = await run_pieces(pieces, tmp_path / "run", progress=False, manage_backends=False)
        await _check_run(pieces, summary, read_records(tmp_path / "run"))
    finally:
        await backend.close()


async def _check_run(pieces, summary: dict, records: list[dict]) -> None:
    judged = [(c["answer"], r["reference"]) for r in records for c in r["candidates"]
              if c["answer"] and needs_judge(c["answer"], r["reference"])]
    assert judged, "the tiny model wrote no word the judge could be asked about"
    assert "grader:judge" in summary["cost_by_role"] and "judge" not in summary["cost_by_role"]
    assert summary["cost_by_role"]["grader:judge"]["calls"] >= 2  # yes and no read for each distinct pair
    assert summary["grading_eflops_per_problem"] > 0
    policy = summary["cost_by_role"]["policy"]["eflops"] / summary["problems"]
    assert abs(summary["eflops_per_problem"] - policy) <= 1e-6 * policy  # grading is not test-time compute
    # every stored grade is the judge's own verdict on that pair, asked again directly
    ctx = StrategyContext(Problem("x", ""), {"judge": pieces.roles["judge"]}, Ledger(), Budget("tokens"))
    problems = {p.id: p for p in pieces.dataset.load()}
    for r in records:
        for c in r["candidates"]:
            if c["answer"] and needs_judge(c["answer"], r["reference"]):
                verdict = await judge_same(ctx.role("judge"), problems[r["id"]].problem, c["answer"], r["reference"])
                assert c["grade"] == (1.0 if verdict else 0.0)
