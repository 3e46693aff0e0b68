"""Answer extraction and math grading: MATH-500 self-agreement, hand equivalences, and hostile
inputs that must return within 2 s each while the event loop keeps serving other coroutines."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tts.evals.benchmarks import load_math500
from tts.types import Problem
from tts.verifiers.extract import LastNumber
from tts.verifiers.latex import canonical, last_boxed
from tts.verifiers.math_extract import AnswerIs, Boxed, MathAnswer
from tts.verifiers.math_grader import MathGrader

needs_data = pytest.mark.skipif(not os.environ.get("TTS_DATA_DIR"), reason="TTS_DATA_DIR not set")


@pytest.fixture(scope="module")
async def grader():
    g = MathGrader(workers=2, timeout=1.5)
    await asyncio.to_thread(g.pool.warm)
    yield g
    await g.close()


def test_boxed_nested_last_wins_and_unclosed():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{a}{b^{2}}}") == r"\frac{a}{b^{2}}"
    assert last_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"
    assert last_boxed(r"\boxed 5 apples") == "5"
    assert last_boxed(r"\boxed{unclosed {") is None
    assert Boxed().extract(r"\boxed{\dfrac{1}{2}}") == "0.5"
    assert Boxed().extract(r"\boxed{\frac{2}{6}}") == "1/3"


def test_answer_is_and_final_number_and_position():
    assert AnswerIs().extract("So the answer is 42. Done.") == "42"
    assert AnswerIs().extract("So, the answer is 2 bolts of blue fiber.") == "2"
    assert AnswerIs().extract("The answer is $18 per day.") == "18"
    assert AnswerIs().extract("The answer is x + 1.") == "x + 1"
    assert AnswerIs().extract(r"Final answer: $\frac{3}{6}$") == "0.5"
    assert LastNumber().extract("costs 1,234 dollars, or 1,250.50 with tax") == "1250.5"
    m = MathAnswer()
    assert m.extract(r"The answer is 7 but really \boxed{8}") == "8"  # the later statement wins
    assert m.extract(r"So \boxed{7}. Wait, that double counts: the answer is 6.") == "6"  # a correction
    assert MathAnswer(order=["answer_is", "boxed"]).extract(r"The answer is 7. \boxed{8}") == "8"
    assert m.extract("no answer here") is None
    with pytest.raises(ValueError, match="unknown extraction method"):
        MathAnswer(order=["telepathy"])


def test_canonical_groups_equal_spellings():
    assert canonical(r"\frac12") == canonical("0.5") == canonical("1/2") == canonical(r"\dfrac{1}{2}")
    assert canonical(r"10^\circ") == "10" and canonical(r"\$5.00") == "5"
    assert canonical(r"864 \mbox{ inches}^2") == "864"
    assert canonical(r"\text{Evelyn}") == "Evelyn"
    assert canonical("x = 3") == "3"


EQUIVALENT = [
    (r"\frac12", "0.5"), ("1/2", r"\frac{1}{2}"), (r"(3, \frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)"),
    ("[1,2)", "[1, 2)"), (r"(-\infty, 0) \cup (1, \infty)", r"(-\infty,0)\cup(1,\infty)"),
    (r"\text{Evelyn}", r"\text{Evelyn}"), ("x+1", "1+x"), (r"\sqrt{2}/2", r"\frac{\sqrt2}{2}"),
    ("2, 3", "3, 2"), ("1.5", r"\frac{3}{2}"),
]
DIFFERENT = [("3", "4"), ("[1,2]", "[1,2)"), (r"\frac{1}{3}", "0.3"), (r"\text{Bob}", r"\text{Evelyn}"),
             ("(1, 2)", "(2, 1)")]


@pytest.mark.parametrize("answer,reference", EQUIVALENT)
async def test_hand_equivalences(grader, answer, reference):
    assert await grader.grade(Problem("p", "", reference), [answer]) == [1.0]


@pytest.mark.parametrize("answer,reference", DIFFERENT)
async def test_hand_differences(grader, answer, reference):
    assert await grader.grade(Problem("p", "", reference), [answer]) == [0.0]


def hostile_strings() -> list[str]:
    out = [
        r"2^{2^{2^{100}}}", r"9^{9^{9^{9}}}", "10**10**10**10", r"1000000000!", r"(10^{100})!",
        r"\frac{1}{0}", r"0^0", r"\infty - \infty", "{" * 500, "}" * 500, r"\boxed{" * 300,
        r"\frac{" * 200 + "1" + "}" * 100, "(" * 1000, r"\sqrt{" * 400 + "2" + "}" * 400,
        "x" * 100_000, "1" * 100_000, r"\left(" * 5000, "\x00\x01\x02", "🙂" * 1000,
        r"\begin{pmatrix}" + "1&" * 3000 + r"\end{pmatrix}", r"e^{e^{e^{e^{e^{10}}}}}",
        r"\int_0^\infty e^{-x^{1000}} dx", r"\sum_{n=1}^{10^{100}} n^{n}", r"\prod_{k=1}^{10^9} k",
        r"10^{-10^{10}}", r"2^{2^{64}} \bmod 7", "a" * 1500, r"\text{" + "b" * 2000 + "}",
        r"\\" * 5000, "$" * 3000, r"\frac{\frac{\frac{\frac{1}{2}}{3}}{4}}{5}" * 50, "1e999999999",
        "-" * 10000 + "1", r"\mathbb{R}^{10^{10}}", r"x^{x^{x^{x^{x}}}} = 2", r"\lim_{x\to\infty} x^{x^x}",
        "NaN", "inf", "-inf", "1/0", "0/0", r"\sqrt{-1}^{10^{20}}", r"\binom{10^{12}}{10^{6}}",
        r"\Gamma(10^{10})", r"\zeta(10^{10})", "12345678901234567890" * 40, r"\cdot" * 4000,
        "[" * 200 + "]" * 199, r"(1,2,3," * 500, r"\{" * 1000,
    ]
    assert len(out) == 50
    return out


async def test_hostile_inputs_return_fast_and_loop_keeps_serving(grader):
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    extractor = MathAnswer()
    slowest = 0.0
    for i, text in enumerate(hostile_strings()):
        t0 = time.perf_counter()
        answer = extractor.extract(f"so the result is \\boxed{{{text}}}") if i % 2 else text
        result = await grader.grade(Problem(f"h{i}", "", "7" if i % 3 else text[:500]), [answer, text])
        elapsed = time.perf_counter() - t0
        slowest = max(slowest, elapsed)
        assert elapsed < 2.0, f"hostile input {i} took {elapsed:.2f} s"
        assert all(r in (0.0, 1.0) for r in result)
    stop.set()
    await tick
    print(f"hostile: slowest {slowest:.2f} s, worker kills {grader.pool.kills}, max loop gap {max(gaps):.3f} s")
    assert max(gaps) < 0.5, f"event loop stalled for {max(gaps):.2f} s"


@needs_data
async def test_math500_references_agree_with_their_own_solutions():
    """The reference answer against the boxed answer of its own reference solution, through
    math-verify alone (no canonical short-cut), on all 500 items."""
    g = MathGrader(shortcut=False)
    try:
        problems = load_math500().load()
        boxed = Boxed()
        grades = [(await g.grade(p, [boxed.extract(p.meta["solution"])]))[0] for p in problems]
    finally:
        await g.close()
    agreement = sum(grades) / len(grades)
    print(f"MATH-500 grader self-agreement: {agreement:.3f}")
    assert len(problems) == 500 and agreement >= 0.99
