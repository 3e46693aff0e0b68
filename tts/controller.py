"""The controller: feeds problems to the strategy with bounded concurrency, grades the final answer
and every candidate after the strategy returns, writes one durable record per problem and resumes
from the records; summarising them is evals' work (tts.runner joins the two). The strategy never
sees the grader."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts.budget import Budget
from tts.build import Pieces
from tts.context import StrategyContext
from tts.ledger import GRADER_ROLE_PREFIX, Ledger
from tts.lock import check_environment, check_resumable, write_lock
from tts.progress import mode_for
from tts.progress import progress as progress_for
from tts.records import RecordStore
from tts.types import Candidate, Outcome, Problem

log = logging.getLogger(__name__)


def candidate_record(c: Candidate, store_text: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "index": c.index, "role": c.role, "seed": c.seed, "answer": c.answer, "grade": c.grade,
        "scores": c.scores, "logprob_stats": c.logprob_stats, "finish_reason": c.finish_reason,
        "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
        "eflops": c.eflops, "iid": c.iid,
    }
    if c.meta:
        rec["meta"] = c.meta
    if store_text:
        rec["text"] = c.text
    return rec


_frozen = 0  # controllers running inside a frozen heap


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Exempt what exists once the backends are up (an engine's millions of objects) from cyclic
    garbage collection while problems run: each collection otherwise walked that heap, ~300 µs per
    problem of a controller-bound vLLM run. The last controller out unfreezes it."""
    global _frozen
    gc.freeze()
    _frozen += 1
    try:
        yield
    finally:
        _frozen -= 1
        if not _frozen:
            gc.unfreeze()


@dataclass
class RunOutcome:
    """What one `Controller.run` did: its selection, time, how many problems it ran, and the roles'
    shapes for pricing (None when nothing ran: price from the lock)."""

    run_dir: Path
    problem_ids: list[str]
    wall_seconds: float
    problems_this_run: int
    shapes: dict[str, Any] | None
    ledger: Ledger
    start_seconds: float = 0.0  # of wall_seconds, spent starting backends (engines, tokenizers)


class Controller:
    """Runs one recipe over a dataset into `run_dir`."""

    def __init__(self, pieces: Pieces, run_dir: Path, limit: int | None = None,
                 progress: bool | str = True, ledger: Ledger | None = None, only: set[str] | None = None,
                 manage_backends: bool = True, force: bool = False) -> None:
        self.pieces, self.run_dir, self.limit = pieces, Path(run_dir), limit
        self.only = only  # run just these problem ids (adaptive repeats)
        self.manage_backends = manage_backends  # False: the caller starts and closes them
        self.force = force  # resume although a chat template or package version changed
        self.recipe = pieces.recipe
        self.progress = mode_for(progress)  # True: a bar on a terminal, log lines otherwise
        self.ledger = ledger or Ledger(pieces.cost_model)
        self.store = RecordStore(self.run_dir)
        budget = self.recipe.budget
        self.run_budget = Budget(budget.unit, budget.run)
        self.done = 0
        self.failed = 0
        self.correct = 0.0

    async def run(self) -> RunOutcome:
        """Run every problem of the selection not yet recorded; say what ran. The summary is the
        caller's (`tts.runner`): the controller writes records, evals read them."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = self.run_dir / "recipe.lock.yaml"
        check_resumable(lock, self.recipe.resolved())
        for change in check_environment(lock, None, self.force) if lock.exists() else []:
            log.warning("resuming with --force although %s changed", change)
        problems = self.pieces.problems(self.limit)
        if self.only is not None:
            problems = [p for p in problems if p.id in self.only]
        finished = {pid for pid, r in self.store.load().items() if r.get("status") == "ok"}
        todo = [p for p in problems if p.id not in finished]
        log.info("%d problems, %d already recorded, %d to run", len(problems), len(problems) - len(todo), len(todo))
        ids = [p.id for p in problems]
        if not todo and lock.exists():
            log.warning("%d of %d problems already recorded; nothing to run (another --out starts afresh)",
                        len(problems), len(problems))
            return RunOutcome(self.run_dir, ids, 0.0, 0, None, self.ledger)
        t0 = time.perf_counter()
        started = t0
        try:
            await self._start_backends()
            started = time.perf_counter()
            roles = self.pieces.roles.items()
            templates = {name: role.chat_template_hash() for name, role in roles}
            if lock.exists():  # a resume: the lock stays as first written
                for change in check_environment(lock, templates, self.force):
                    log.warning("resuming with --force although %s changed", change)
            else:
                write_lock(lock, self.recipe.resolved(), templates,
                           {name: role.backend.shape.to_dict() for name, role in roles if role.backend.shape})
            with frozen_heap():
                await self._run_all(todo)
        finally:
            self.store.close()
            await self._close()
        shapes = {name: role.backend.shape for name, role in self.pieces.roles.items() if role.backend.shape is not None}
        return RunOutcome(self.run_dir, ids, round(time.perf_counter() - t0, 3), self.done, shapes, self.ledger,
                          round(started - t0, 3))

    async def _start_backends(self) -> None:
        if self.manage_backends:
            await start_backends(self.pieces)

    async def _close(self) -> None:
        if self.manage_backends:
            await close_backends(self.pieces.backends.values())
        for part in [self.pieces.grader, *self.pieces.selectors.values()]:
            close = getattr(part, "close", None)
            if close is not None:
                await close()

    async def _run_all(self, todo: list[Problem]) -> None:
        sem = asyncio.Semaphore(self.recipe.concurrency)
        bar = progress_for(self.progress, len(todo))

        async def one(problem: Problem) -> None:
            async with sem:
                if self.run_budget.exhausted:
                    return
                await self._solve_and_record(problem)
                bar.advance(self.done, self.failed, self.correct)

        with bar:
            tasks = [asyncio.create_task(one(p)) for p in todo]
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if self.run_budget.exhausted:
            log.warning("run budget (%s %g) reached: stopped before all problems; which ones ran "
                        "depends on scheduling", self.run_budget.unit, self.run_budget.limit)

    async def _solve_and_record(self, problem: Problem) -> None:
        t0 = time.perf_counter()
        budget = Budget(self.recipe.budget.unit, self.recipe.budget.per_problem, parent=self.run_budget)
        ctx = StrategyContext(problem, self.pieces.roles, self.ledger, budget, self.recipe.seed,
                              self.pieces.selectors, self.pieces.extractor)
        record: dict[str, Any] = {"id": problem.id, "reference": problem.answer}
        try:
            outcome = await self.pieces.strategy.solve(problem, ctx)
            await self._grade(problem, outcome)
            record.update(self._outcome_fields(outcome))
            record["status"] = "ok"
            self.correct += record["grade"] or 0.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("problem %s failed: %s: %s", problem.id, type(exc).__name__, exc)
            record.update(status="error", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(limit=8))
            self.failed += 1
        record["cost"] = {role: t.to_dict() for role, t in self.ledger.by_role(problem.id).items()}
        record["seconds"] = round(time.perf_counter() - t0, 4)
        if not self.store.append(record) and record["status"] == "ok":  # written as an error record instead
            self.failed += 1
            self.correct -= record["grade"] or 0.0
        self.ledger.forget(problem.id)
        self.done += 1

    async def _grade(self, problem: Problem, outcome: Outcome) -> None:
        answers = [outcome.answer.answer] + [c.answer for c in outcome.candidates]
        grader = self.pieces.grader
        if getattr(grader, "roles", ()):
            grades = await grader.grade_with(problem, answers, self._grading_context(problem, grader.roles))
        else:
            grades = await grader.grade(problem, answers)
        outcome.answer.info["grade"] = grades[0]
        for cand, g in zip(outcome.candidates, grades[1:]):
            cand.grade = g

    def _grading_context(self, problem: Problem, names: tuple[str, ...]) -> StrategyContext:
        """Roles for a grader that calls a model: ledgered as `grader:<role>` (kept apart from the
        strategy's cost), outside the strategy's budget, seeded like any call."""
        roles = {}
        for name in names:
            if name not in self.pieces.roles:
                raise KeyError(f"grader role '{name}' is not defined in the recipe "
                               f"(roles: {', '.join(self.pieces.roles)})")
            roles[name] = self.pieces.roles[name].renamed(f"{GRADER_ROLE_PREFIX}{name}")
        return StrategyContext(problem, roles, self.ledger, Budget(self.recipe.budget.unit, None),
                               self.recipe.seed)

    def _outcome_fields(self, outcome: Outcome) -> dict[str, Any]:
        store_text = self.recipe.output.store_text
        return {
            "answer": outcome.answer.answer,
            "grade": outcome.answer.info.pop("grade"),
            "answer_candidate": outcome.answer.candidate_index,
            "answer_info": outcome.answer.info,
            "candidates": [candidate_record(c, store_text) for c in outcome.candidates],
            "info": outcome.info,
        }


async def start_backends(pieces: Pieces) -> None:
    await asyncio.gather(*(b.start() for b in pieces.backends.values()))


async def close_backends(backends: Any) -> None:
    """Close each backend; one failing to close does not stop the others."""
    for backend in backends:
        try:
            await backend.close()
        except Exception:  # closing must not hide the run's own error
            log.exception("closing a backend failed")
