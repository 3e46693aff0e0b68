"""Code problems: every HumanEval and MBPP reference solution passes its hidden tests in the
sandbox and a corrupted version of each fails; public tests, extraction and the selectors."""

from __future__ import annotations

import asyncio
import os

import pytest

from tts.evals.code import MBPP, HumanEval
from tts.types import Candidate, Problem
from tts.verifiers.code_tests import doctest_asserts, entry_point, extract_code, public_tests
from tts.verifiers.code_verify import CodeTestsGrader, PublicTests, parse_asserts

needs_data = pytest.mark.skipif(not os.environ.get("TTS_DATA_DIR"), reason="TTS_DATA_DIR not set")


def corrupt(problem: Problem, code: str) -> str:
    """The reference with its entry point redefined to return a sentinel no test accepts."""
    return code + f"\n\ndef {entry_point(problem)}(*args, **kwargs):\n    return object()\n"


async def _grade_all(problems: list[Problem], corrupted: bool) -> list[float]:
    grader = CodeTestsGrader({"workers": 4, "limits": {"wall_seconds": 30, "cpu_seconds": 20}})
    codes = [p.meta["reference_solution"] for p in problems]
    if corrupted:
        codes = [corrupt(p, c) for p, c in zip(problems, codes)]
    grades = await asyncio.gather(*(grader.grade(p, [c]) for p, c in zip(problems, codes)))
    return [g[0] for g in grades]


@needs_data
@pytest.mark.parametrize("loader,count", [(HumanEval(), 164), (MBPP(split=None), 427)], ids=["humaneval", "mbpp"])
def test_every_reference_passes_and_every_corruption_fails(loader, count):
    problems = loader.load()
    assert len(problems) == count
    good = asyncio.run(_grade_all(problems, False))
    failed = [p.id for p, g in zip(problems, good) if g != 1.0]
    assert not failed, failed[:10]
    bad = asyncio.run(_grade_all(problems, True))
    passed = [p.id for p, g in zip(problems, bad) if g != 0.0]
    assert not passed, passed[:10]


@needs_data
def test_mbpp_test_split_and_public_test_in_prompt():
    problems = MBPP().load()
    assert len(problems) == 257
    p = problems[0]
    assert p.meta["test_list"][0] in p.problem and public_tests(p) == p.meta["test_list"][:1]
    assert entry_point(p) and entry_point(p) in p.meta["test_list"][0]


def test_doctest_examples_become_asserts():
    prompt = 'def f(x):\n    """Double.\n    >>> f(2)  # two\n    4\n    >>> print("hi")\n    hi\n    >>> f(a)\n    0\n    """\n'
    assert doctest_asserts(prompt) == ["assert (f(2)) == (4)"]
    arrows = 'def g(s):\n    """For example:\n    g("ab") ==> True\n    g(\'a\') should return False.\n    """\n'
    assert doctest_asserts(arrows, "g") == ["assert (g('ab')) == (True)", "assert (g('a')) == (False)"]


@needs_data
def test_public_tests_hold_for_the_references():
    """Public tests come from the prompt; on all but two known docstring errors of HumanEval (47's
    median example, 148's tuple written as a string) the reference passes them."""
    from tts.verifiers.code_verify import pass_rates
    from tts.verifiers.sandbox import Sandbox

    async def failing(problems):
        sandbox = Sandbox(workers=4)
        rows = await asyncio.gather(*(pass_rates(sandbox, p, [p.meta["reference_solution"]], public_tests(p))
                                      for p in problems))
        return sorted(p.id for p, r in zip(problems, rows) if not all(r[0]))

    humaneval = HumanEval().load()
    assert sum(1 for p in humaneval if public_tests(p)) >= 120
    assert asyncio.run(failing(humaneval)) == ["HumanEval/148", "HumanEval/47"]
    assert asyncio.run(failing(MBPP().load())) == []


def test_code_extraction():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("    return x + 1\n") == "    return x + 1\n"
    assert extract_code("   \n") is None
    asserts = parse_asserts(["assert f(1) == 2\nassert f(1) == 2\nassert g(3)\nassert f(2 ==\nprint(1)"], "f", 10)
    assert asserts == ["assert f(1) == 2"]


def test_public_tests_selector_scores_by_pass_rate():
    meta = {"kind": "humaneval", "entry_point": "inc", "test": "def check(c):\n    assert c(1) == 2\n",
            "prompt": 'def inc(x):\n    """Add one.\n    >>> inc(1)\n    2\n    >>> inc(5)\n    6\n    """\n'}
    problem = Problem("p", meta["prompt"], None, meta)
    codes = ["    return x + 1\n", "    return 2\n", "    while True: pass\n", None]
    cands = [Candidate("p", i, "policy", None, [], c or "", answer=c) for i, c in enumerate(codes)]
    scores = asyncio.run(PublicTests({"limits": {"wall_seconds": 5, "cpu_seconds": 3}}).score(problem, cands, None))
    assert scores == [1.0, 0.5, 0.0, 0.0]
    grades = asyncio.run(CodeTestsGrader({"limits": {"wall_seconds": 5, "cpu_seconds": 3}}).grade(problem, codes))
    assert grades == [1.0, 1.0, 0.0, 0.0]
