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

    @abc.abstractmethod
    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]: ...

    async def close(self) -> None:
        """Release worker processes, if any."""


class Selector(abc.ABC):
    """Scores candidates of one problem (higher is better); strategies and aggregators use it."""

    name: str = "selector"

    @abc.abstractmethod
    async def score(self, problem: Problem, candidates: list[Candidate], ctx: Any) -> list[float]: ...
