"""The toy arithmetic task. A problem like `55-42*3` is worked left to right as the chain
`55-42=13;13*3=39#39`: numbers 0-99, `*` only by 2-9, every intermediate in [0, 999]."""

from __future__ import annotations

import random
from dataclasses import dataclass

OPS = "+-*"
SEPARATOR = ";"  # ends the prompt: the model writes the chain after it
ANSWER_MARK = "#"


@dataclass(frozen=True)
class ToyProblem:
    numbers: tuple[int, ...]
    ops: tuple[str, ...]

    @property
    def text(self) -> str:
        out = str(self.numbers[0])
        for op, num in zip(self.ops, self.numbers[1:]):
            out += f"{op}{num}"
        return out

    def steps(self) -> list[tuple[int, str, int, int]]:
        """(left, op, right, result) for each operation, left to right."""
        acc, out = self.numbers[0], []
        for op, num in zip(self.ops, self.numbers[1:]):
            res = _apply(acc, op, num)
            out.append((acc, op, num, res))
            acc = res
        return out

    @property
    def answer(self) -> int:
        return self.steps()[-1][3]

    @property
    def chain(self) -> str:
        """The worked solution the model learns to write, ending with `#answer`."""
        body = SEPARATOR.join(f"{a}{op}{b}={r}" for a, op, b, r in self.steps())
        return f"{body}{ANSWER_MARK}{self.answer}"


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def random_problem(rng: random.Random, n_ops: int = 2) -> ToyProblem:
    """Draw a problem whose intermediates all stay in [0, 999] (rejection sampling)."""
    while True:
        nums, ops, acc = [rng.randint(0, 99)], [], None
        acc = nums[0]
        for _ in range(n_ops):
            op = rng.choice(OPS)
            num = rng.randint(2, 9) if op == "*" else rng.randint(0, 99)
            acc = _apply(acc, op, num)
            if not 0 <= acc <= 999:
                break
            nums.append(num)
            ops.append(op)
        else:
            return ToyProblem(tuple(nums), tuple(ops))


def problems(count: int, seed: int, n_ops: int = 2, exclude: set[str] | None = None) -> list[ToyProblem]:
    """`count` distinct problems drawn from `seed`, skipping any whose text is in `exclude`."""
    rng, seen, out = random.Random(seed), set(exclude or ()), []
    while len(out) < count:
        p = random_problem(rng, n_ops)
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def prompt_text(problem_text: str) -> str:
    """What the model is shown: the expression and the separator."""
    return f"{problem_text}{SEPARATOR}"


# The held-out evaluation set is fixed by this seed; training never sees its problems.
TEST_SEED, TEST_SIZE = 20261127, 1000
