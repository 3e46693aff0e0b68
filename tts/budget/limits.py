"""Budgets in samples, tokens (uncached prompt + completion) or eFLOPs. A call reserves its
worst case before it runs and settles to what it used; a call that cannot be covered raises
`BudgetExhausted`, and the strategy aggregates what it has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["samples", "tokens", "eflops"]
UNITS: tuple[str, ...] = ("samples", "tokens", "eflops")


class BudgetExhausted(Exception):
    """The problem's (or run's) budget cannot cover the next call."""


@dataclass
class Reservation:
    amount: float
    settled: bool = False


class Budget:
    """A spending limit in one unit; `limit=None` means unlimited (still counts spending)."""

    def __init__(self, unit: Unit = "tokens", limit: float | None = None, parent: "Budget | None" = None):
        if unit not in UNITS:
            raise ValueError(f"budget unit must be one of {', '.join(UNITS)}, got '{unit}'")
        self.unit, self.limit, self.parent = unit, limit, parent
        self.used = 0.0
        self.reserved = 0.0

    @property
    def remaining(self) -> float:
        left = float("inf") if self.limit is None else self.limit - self.used - self.reserved
        return min(left, self.parent.remaining) if self.parent else left

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def reserve(self, amount: float) -> Reservation:
        """Hold `amount` for a call, or raise `BudgetExhausted` if it does not fit."""
        if amount > self.remaining:
            raise BudgetExhausted(
                f"{self.unit} budget: call needs {amount:g}, {max(self.remaining, 0):g} left")
        self._hold(amount)
        return Reservation(amount)

    def _hold(self, amount: float) -> None:
        self.reserved += amount
        if self.parent:
            self.parent._hold(amount)

    def settle(self, reservation: Reservation, used: float) -> None:
        """Release a reservation and charge what the call really used."""
        if reservation.settled:
            return
        reservation.settled = True
        node: Budget | None = self
        while node is not None:
            node.reserved -= reservation.amount
            node.used += used
            node = node.parent
