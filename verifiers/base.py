"""Contracts for extractors, graders and selectors."""

from __future__ import annotations

import abc
from typing import Any

from tts.types import Candidate, Problem


class Extractor(abc.ABC):
    """Turns model text into a canonical answer string (or None); the canonical form groups votes."""

    name: str = "extractor"

    @abc.abstractmethod
    def extract(self, text: str) -> str | None: ...


class Grader(abc.ABC):
    """Grades answers against a problem's reference: 1.0 correct, 0.0 wrong (partial credit allowed).
    Async, so slow checks (math equivalence, code execution) never block the event loop."""

    name: str = "grader"
    roles: tuple[str, ...] = ()  # recipe roles this grader calls (a model judge); bound by the controller

    @abc.abstractmethod
    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]: ...

    async def grade_with(self, problem: Problem, answers: list[str | None], ctx: Any) -> list[float]:
        """Grade with a context whose role calls are ledgered under `grader:<role>` (for graders
        that call a model); graders that call none just `grade`."""
        return await self.grade(problem, answers)

    async def close(self) -> None:
        """Release worker processes, if any."""


class Selector(abc.ABC):
    """Scores candidates of one problem (higher is better); strategies and aggregators use it."""

    name: str = "selector"

    @abc.abstractmethod
    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]: ...
