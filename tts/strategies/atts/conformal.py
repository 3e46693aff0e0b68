"""Conformal rejection for ATTS: a bank of step losses (nonconformity r = mean target NLL), the
p-value of a new step against it, and the rule "send to the target iff p > 1 - alpha".

With conformity s = -r, p = (#{bank <= r*} + 1) / (N + 1): a step whose loss is high relative to
the bank gets a large p. Under exchangeability of bank and test scores (and no ties) the rejection
rate lies in [alpha, alpha + 1/(N + 1)); `exact_rejection_rate` gives the exact value."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable

MODES = ("marginal", "per_question")
_EPS = 1e-9  # comparisons of (k + 1) against (1 - alpha)(N + 1) are exact up to float noise


class ConformalError(ValueError):
    """A calibrator asked for a p-value it cannot give (an empty bank, a bad alpha)."""


def exact_rejection_rate(bank_size: int, alpha: float) -> float:
    """P(reject) for a continuous exchangeable score: k = #{bank <= r*} is uniform on {0..N}."""
    n1 = bank_size + 1
    return (n1 - math.floor((1 - alpha) * n1 + _EPS)) / n1


def alpha_for_budget(budget: float, m: int) -> float:
    """The paper's budget view: B expected target interventions per round of m samples."""
    if m < 1 or not 0 < budget <= m:
        raise ConformalError(f"a per-round target budget needs 0 < budget <= m, got budget={budget}, m={m}")
    return budget / m


class _Bank:
    """Sorted losses with optional FIFO eviction (the online memory's cap)."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.order: deque[float] = deque()
        self.sorted: list[float] = []

    def add(self, value: float) -> None:
        self.order.append(value)
        bisect.insort(self.sorted, value)
        if self.cap is not None and len(self.order) > self.cap:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def at_most(self, value: float) -> int:
        return bisect.bisect_right(self.sorted, value)

    def __len__(self) -> int:
        return len(self.sorted)


class ConformalCalibrator:
    """Marginal (one bank for every question) or per-question banks of step losses.

    `fit` / `fit_per_question` load calibration scores; `update` appends one (the online memory,
    FIFO-capped at `bank_max`); `p_value` and `reject` test a new loss. A non-finite loss (a step
    the target could not score) is treated as maximally doubtful: p = 1, always rejected."""

    def __init__(self, mode: str = "marginal", alpha: float = 0.4, bank_max: int | None = None) -> None:
        if mode not in MODES:
            raise ConformalError(f"conformal mode must be one of {', '.join(MODES)}, got '{mode}'")
        if not 0 < alpha < 1:
            raise ConformalError(f"alpha must be in (0, 1), got {alpha}")
        if bank_max is not None and bank_max < 1:
            raise ConformalError(f"bank_max must be >= 1, got {bank_max}")
        self.mode, self.alpha, self.bank_max = mode, alpha, bank_max
        self._banks: dict[str | None, _Bank] = {}

    def _key(self, qid: str | None) -> str | None:
        if self.mode == "per_question" and qid is None:
            raise ConformalError("a per-question calibrator needs the question id")
        return qid if self.mode == "per_question" else None

    def _bank(self, qid: str | None, create: bool = False) -> _Bank | None:
        key = self._key(qid)
        if create and key not in self._banks:
            self._banks[key] = _Bank(self.bank_max)
        return self._banks.get(key)

    def fit(self, scores: Iterable[float], qid: str | None = None) -> "ConformalCalibrator":
        """Add calibration losses (to the marginal bank, or to question `qid`'s bank)."""
        bank = self._bank(qid, create=True)
        for s in scores:
            if math.isfinite(s):
                bank.add(float(s))
        return self

    def fit_per_question(self, scores: dict[str, Iterable[float]]) -> "ConformalCalibrator":
        for qid, values in scores.items():
            self.fit(values, qid)
        return self

    def update(self, score: float, qid: str | None = None) -> None:
        """Append one observed loss to the bank it was tested against (online calibration)."""
        self.fit([score], qid)

    def size(self, qid: str | None = None) -> int:
        bank = self._bank(qid)
        return len(bank) if bank is not None else 0

    def p_value(self, score: float, qid: str | None = None) -> float:
        """(#{bank losses <= score} + 1) / (N + 1); raises on an empty bank."""
        bank = self._bank(qid)
        if bank is None or len(bank) == 0:
            where = f" for question {qid}" if self.mode == "per_question" else ""
            raise ConformalError(f"empty calibration bank{where}: calibrate before testing steps")
        if not math.isfinite(score):
            return 1.0
        return (bank.at_most(score) + 1) / (len(bank) + 1)

    def reject(self, score: float, qid: str | None = None) -> bool:
        """Send the step to the target iff its p-value exceeds 1 - alpha."""
        return self.p_value(score, qid) > 1 - self.alpha + _EPS
