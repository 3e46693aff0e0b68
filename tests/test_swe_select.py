"""Selection rules on candidate sets whose right choice is known: R2E-Gym hybrid/EB/EF tie sets,
the Best@K estimator against exact enumeration, CodeMonkeys voting, shortlist and the selection
loop (a scripted model), and a toy end to end in the sandbox."""

from __future__ import annotations

import asyncio
import random

import pytest

from tts.verifiers.swe_select import (Scored, SelectionLoop, best_at_k_curve, best_at_k_exact, expected_correct,
                                  hybrid_k, pass_at_k, select_execution_based, select_execution_free,
                                  select_hybrid, shortlist, vote_counts, voting_expected)


def table():
    # id, ef, regression, testgen, correct
    rows = [("a", 0.9, 1.0, 0.5, False), ("b", 0.8, 1.0, 0.8, True), ("c", 0.7, 1.0, 0.8, False),
            ("d", 0.2, 0.5, 1.0, True), ("e", 0.95, 0.0, 0.0, False)]
    return [Scored(i, ef=e, regression=r, testgen=t, correct=c) for i, e, r, t, c in rows]


def ids(tie):
    return sorted(c.id for c in tie)


def test_hand_table_tie_sets():
    c = table()
    assert ids(select_execution_based(c)) == ["b", "c"] and expected_correct(select_execution_based(c)) == 0.5
    assert ids(select_execution_free(c)) == ["e"]
    # n = 5 keeps k = 3 by EF (e, a, b); then regression 1.0 (a, b); then testgen 0.8 (b)
    assert hybrid_k(5) == 3 and ids(select_hybrid(c)) == ["b"]


def test_hybrid_edge_cases():
    assert hybrid_k(3) == 3 and hybrid_k(2) == 2 and hybrid_k(10) == 5 and hybrid_k(7) == 3
    few = table()[:3]
    assert ids(select_hybrid(few)) == ["b"]  # n <= 3 keeps all; EB ties b and c; EF breaks the tie
    rng = random.Random(0)
    # EF perfect, EB uninformative => hybrid = EF
    cands = [Scored(str(i), ef=rng.random(), regression=1.0, testgen=1.0) for i in range(10)]
    assert ids(select_hybrid(cands)) == ids(select_execution_free(cands))
    # EB perfect among the top k => hybrid picks a correct one whenever one is in the top k
    for seed in range(50):
        r = random.Random(seed)
        cands = [Scored(str(i), ef=r.random(), correct=r.random() < 0.3) for i in range(10)]
        for c in cands:
            c.regression, c.testgen = (1.0 if c.correct else 0.5), 0.0
        top = sorted(cands, key=lambda c: -c.ef)[:5]
        if any(c.correct for c in top):
            assert expected_correct(select_hybrid(cands)) == 1.0
    # ties at the cut-off are all kept
    tied = [Scored(str(i), ef=0.5, regression=float(i == 7), testgen=0.0) for i in range(10)]
    assert ids(select_hybrid(tied)) == ["7"]


def test_best_at_k_monte_carlo_matches_exact_enumeration():
    rng = random.Random(3)
    cands = [Scored(str(i), ef=rng.random(), regression=rng.choice([0.5, 1.0]), testgen=rng.choice([0, 0.5, 1]),
                    correct=rng.random() < 0.4) for i in range(8)]
    curve = best_at_k_curve(cands, select_hybrid, range(1, 9), trials=4000, seed=1)
    mean_correct = sum(c.correct for c in cands) / 8
    assert curve[1]["mean"] == pytest.approx(mean_correct, abs=3 * curve[1]["std"] / 4000 ** 0.5 + 1e-9)
    for k in range(1, 9):
        exact = best_at_k_exact(cands, select_hybrid, k)
        se = curve[k]["std"] / 4000 ** 0.5
        assert abs(curve[k]["mean"] - exact) <= 3 * se + 1e-9
        assert curve[k]["pass"] >= curve[k]["mean"] - 1e-9
        assert curve[k]["pass"] == pytest.approx(pass_at_k(8, sum(c.correct for c in cands), k), abs=0.03)
    assert best_at_k_curve(cands, select_hybrid, [20], trials=3)[20]["mean"] == best_at_k_exact(cands, select_hybrid, 8)


def test_voting_and_shortlist():
    codes = [[0, 0, 2], [0, 1, None], [2, 2, 2], [0, 0, 0], [0, 0, 2]]
    votes = vote_counts(codes)
    assert votes == [2, 1, 0, 3, 2]
    patches = ["fix-long-version", "x", "y", "zz", "fix-long-version"]
    assert shortlist(patches, votes) == [3, 0, 1]  # duplicate of 0 dropped; ties by length
    assert shortlist(["", "a"], [5, 0]) == [1]  # empty patches never shortlisted
    cands = [Scored(str(i), votes=v, correct=i == 0) for i, v in enumerate([3, 3, 1])]
    assert voting_expected(cands) == 0.5


class Scripted:
    def __init__(self, replies):
        self.replies, self.calls = list(replies), 0

    async def __call__(self, messages):
        self.calls += 1
        return self.replies.pop(0) if self.replies else "hmm"


def test_selection_loop_scripted():
    async def runner(script, index):
        return (0 if index == 1 else 2), "x" * 10000

    test = "```python\nimport sys\nsys.exit(0)\n```"
    loop = SelectionLoop(Scripted([test, "<choice>1</choice>"]), runner, max_attempts=8, max_output_chars=100)
    res = asyncio.run(loop.select("issue", "", ["d0", "d1", "d2"]))
    assert (res.choice, res.attempts, res.fallback) == (1, 2, False)
    report = res.transcript[2]["content"]
    assert "candidate 1: exit code 0" in report and "x" * 101 not in report  # output truncated
    # garbage, then both at once, then a choice: two corrections
    res = asyncio.run(SelectionLoop(Scripted(["???", test + "<choice>0</choice>", "<choice>2</choice>"]),
                                    runner).select("i", "", ["a", "b", "c"]))
    assert res.choice == 2 and res.attempts == 3
    # never chooses: bounded, falls back to candidate 0
    model = Scripted([test] * 20)
    res = asyncio.run(SelectionLoop(model, runner, max_attempts=4).select("i", "", ["a", "b"]))
    assert res.fallback and res.choice == 0 and model.calls == 4


BUGGY = "def middle(a, b, c):\n    return sorted([a, b, c])[0]\n"
IMPLEMENTATIONS = [
    "def middle(a, b, c):\n    return sorted([a, b, c])[1]\n",  # correct
    "def middle(a, b, c):\n    return (a + b + c) / 3\n",
    "def middle(a, b, c):\n    return max(a, b, c)\n",
    "def middle(a, b, c):\n    return a if b < a < c else (b if a < b < c else c)\n",
    "def middle(a, b, c):\n    return sorted([a, b, c])[1] if a != 0 else 0\n",
    "def middle(a, b, c):\n    return b\n",
]
TESTS = [  # exit 0 = solved, 2 = not solved; two of them are wrong
    "from sol import middle\nimport sys\nsys.exit(0 if middle(3, 1, 2) == 2 else 2)\n",
    "from sol import middle\nimport sys\nsys.exit(0 if middle(1, 2, 3) == 2 else 2)\n",
    "from sol import middle\nimport sys\nsys.exit(0 if middle(0, 5, 9) == 5 else 2)\n",
    "from sol import middle\nimport sys\nsys.exit(0 if middle(9, 9, 1) == 9 else 2)\n",
    "from sol import middle\nimport sys\nsys.exit(0 if middle(1, 2, 3) == 3 else 2)\n",  # wrong
    "from sol import middle\nimport sys\nsys.exit(0 if middle(4, 4, 4) == 0 else 2)\n",  # wrong
]


def test_toy_end_to_end_voting_and_hybrid_beat_random():
    from tts.verifiers.sandbox import Sandbox

    sandbox = Sandbox(workers=4)

    async def matrix():
        jobs = [{"argv": ["python", "-B", "t.py"], "files": {"sol.py": impl, "t.py": t}}
                for impl in IMPLEMENTATIONS for t in TESTS]
        runs = await sandbox.map(jobs)
        return [[runs[i * len(TESTS) + j].exit_code for j in range(len(TESTS))] for i in range(len(IMPLEMENTATIONS))]

    codes = asyncio.run(matrix())
    votes = vote_counts(codes)
    assert votes.index(max(votes)) == 0 and votes.count(max(votes)) == 1
    assert shortlist(IMPLEMENTATIONS, votes)[0] == 0
    wins_vote = wins_hybrid = wins_random = 0
    for seed in range(40):
        r = random.Random(seed)
        cands = [Scored(str(i), patch=p, ef=r.random(), regression=1.0, testgen=votes[i] / len(TESTS),
                        votes=votes[i], correct=i == 0) for i, p in enumerate(IMPLEMENTATIONS)]
        subset = r.sample(cands, 4)
        wins_vote += voting_expected(subset)
        wins_hybrid += expected_correct(select_hybrid(subset))
        wins_random += sum(c.correct for c in subset) / 4
    assert wins_vote > wins_random and wins_hybrid > wins_random
