"""The ATTS turn loop for m samples of one problem, in the asynchronous form (each sample its own
coroutine: draft step -> target score -> conformal test -> target turn on rejection -> answer
check, never waiting for siblings) and the synchronous baseline (every phase waits for all live
samples, then the top-B highest-loss steps go to the target)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from tts.budget import BudgetExhausted
from tts.context import StrategyContext
from tts.seeds import call_path
from tts.strategies.atts.conformal import ConformalCalibrator
from tts.strategies.atts.transcript import Step, StepScorer, Transcript, eos_ids, same_vocab, strip_eos
from tts.types import Completion


@dataclass(frozen=True)
class TurnSettings:
    """How each turn samples: step sizes, temperatures, where steps stop, what a rejection does."""

    max_turns: int = 15
    draft_max_tokens: int = 500
    target_max_tokens: int = 500
    draft_temperature: float = 0.8
    target_temperature: float = 0.8
    step_stop: tuple[str, ...] = ()
    target_stop: tuple[str, ...] = ()
    on_reject: str = "continue"  # "continue" (the paper) | "replace" (drop the step, the target rewrites it)
    stop_on_answer: bool = True


@dataclass
class SampleState:
    """One of the m samples: its transcript, counters and timestamps."""

    index: int
    transcript: Transcript
    answer: str | None = None
    done: bool = False
    turns: int = 0
    draft_tokens: int = 0
    target_tokens: int = 0
    scored_tokens: int = 0
    logprobs: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    busy: float = 0.0  # seconds inside its own model calls
    wait: float = 0.0  # seconds waiting for siblings (synchronous variant only)
    finish_reason: str = "length"
    note: str | None = None

    @property
    def interventions(self) -> int:
        return sum(1 for s in self.transcript.steps if s.author == "target")


class Turns:
    """The stages of one turn for one sample, with budget, ledger and seeds applied through roles."""

    def __init__(self, ctx: StrategyContext, draft: str, target: str, settings: TurnSettings,
                 calibrator: ConformalCalibrator | None, update_bank: bool, t0: float) -> None:
        self.ctx, self.s, self.cal, self.update_bank, self.t0 = ctx, settings, calibrator, update_bank, t0
        self.draft, self.target = ctx.role(draft), ctx.role(target)
        self.scorer = StepScorer(self.target)
        self.eos = {"draft": eos_ids(self.draft.tokenizer), "target": eos_ids(self.target.tokenizer)}
        self.shared = same_vocab(self.draft.tokenizer, self.target.tokenizer)  # ids need no re-encoding
        self.qid = ctx.problem.id

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def draft_sampling(self, n: int = 1) -> Any:
        return self.draft.sampling(n=n, max_tokens=self.s.draft_max_tokens, temperature=self.s.draft_temperature,
                                   stop=self.s.step_stop, include_stop_str_in_output=True)

    def _target_sampling(self, replace: bool) -> Any:
        return self.target.sampling(n=1, max_tokens=self.s.target_max_tokens, temperature=self.s.target_temperature,
                                    stop=self.s.step_stop if replace else self.s.target_stop,
                                    include_stop_str_in_output=True)

    async def _write(self, st: SampleState, who: str, sampling: Any, turn: int) -> tuple[Step, Completion, bool]:
        """One generate call by `who` continuing the sample's ids; the step is not yet appended."""
        role = self.draft if who == "draft" else self.target
        prompt = st.transcript.ids[who]
        start = time.perf_counter()
        gen = await role.generate(prompt, sampling, call=call_path("atts", f"s{st.index}", f"t{turn}", who))
        st.busy += time.perf_counter() - start
        comp = gen.completions[0]
        ids, ended = strip_eos(comp.token_ids, self.eos[who])
        st.logprobs += list(comp.logprobs or [])
        # the end of text ends the sample; a stop string or the token cap ends only the step
        ended = ended or (comp.finish_reason == "stop" and not any(comp.text.endswith(x) for x in sampling.stop))
        step = Step(turn, who, comp.text, len(ids), start=start - self.t0, end=self.now())
        return step, Completion(ids, comp.text, comp.logprobs, comp.finish_reason, comp.seed), ended

    async def draft_step(self, st: SampleState, turn: int) -> tuple[Step, dict[str, list[int]], bool] | None:
        """(a) The draft writes the next step; None when it writes nothing."""
        step, comp, ended = await self._write(st, "draft", self.draft_sampling(), turn)
        if not comp.token_ids:
            st.done, st.finish_reason = True, "stop"
            return None
        st.draft_tokens += len(comp.token_ids)
        added = st.transcript.append("draft", comp.token_ids, comp.text)
        st.transcript.steps.append(step)
        return step, added, ended

    async def score(self, st: SampleState, added: dict[str, list[int]]) -> float:
        """(b) The target's mean NLL of the step's tokens (prefill only)."""
        step_ids = added["target"]
        prefix = st.transcript.ids["target"][: len(st.transcript.ids["target"]) - len(step_ids)]
        start = time.perf_counter()
        loss = await self.scorer.score(prefix, step_ids, call=call_path("atts", f"s{st.index}", "score"))
        st.busy += time.perf_counter() - start
        st.scored_tokens += len(step_ids)
        return loss

    def test(self, step: Step, loss: float) -> None:
        """The conformal decision for one step (asynchronous form)."""
        step.loss, step.p = loss, self.cal.p_value(loss, self.qid)
        step.rejected = self.cal.reject(loss, self.qid)
        if self.update_bank:
            self.cal.update(loss, self.qid)

    async def intervene(self, st: SampleState, turn: int, step: Step, added: dict[str, list[int]],
                        ended: bool) -> bool:
        """(c) On rejection the target continues after the kept step (or rewrites it: `replace`)."""
        replace = self.s.on_reject == "replace"
        if replace:
            step.dropped = True
            st.transcript.drop_last(added)
        new, comp, target_ended = await self._write(st, "target", self._target_sampling(replace), turn)
        st.target_tokens += len(comp.token_ids)
        if comp.token_ids:
            st.transcript.append("target", comp.token_ids, comp.text)
            st.transcript.steps.append(new)
        return target_ended or (ended and not replace)

    def check(self, st: SampleState, ended: bool, turn: int) -> bool:
        """(d) Extract the answer; True when the sample is finished."""
        st.turns = turn + 1
        st.answer = self.ctx.extract(st.transcript.text())
        if ended or (self.s.stop_on_answer and st.answer is not None):
            st.done, st.finish_reason, st.finished = True, "stop", self.now()
        return st.done

    async def guarded(self, st: SampleState, coro: Any) -> Any:
        """Run a stage; a budget that runs out ends this sample with what it has."""
        try:
            return await coro
        except BudgetExhausted as exc:
            st.done, st.note, st.finish_reason = True, f"budget exhausted: {exc}", "length"
            return None

    # -- the asynchronous sample ---------------------------------------------------------------
    async def run_async(self, st: SampleState) -> None:
        st.started = self.now()
        await self.guarded(st, self._loop(st))
        st.finished = st.finished or self.now()

    async def _loop(self, st: SampleState) -> None:
        for turn in range(self.s.max_turns):
            made = await self.draft_step(st, turn)
            if made is None:
                break
            step, added, ended = made
            self.test(step, await self.score(st, added))
            if step.rejected:
                ended = await self.intervene(st, turn, step, added, ended)
            if self.check(st, ended, turn):
                break

    # -- the synchronous baseline --------------------------------------------------------------
    async def run_sync(self, states: list[SampleState], budget: int) -> None:
        """Each phase waits for every live sample; the `budget` highest-loss steps go to the target."""
        for st in states:
            st.started = self.now()
        live = list(states)
        for turn in range(self.s.max_turns):
            made = await self._phase(live, lambda st: self.draft_step(st, turn))
            pairs = [(st, m) for st, m in zip(live, made) if m is not None]
            by = {st.index: m for st, m in pairs}
            losses = await self._phase([st for st, _ in pairs], lambda st: self.score(st, by[st.index][1]))
            worst_first = sorted(range(len(pairs)), key=lambda i: -_loss_key(losses[i]))
            top = {pairs[i][0].index for i in worst_first[:budget]}
            for (st, (step, _, _)), loss in zip(pairs, losses):
                step.loss, step.rejected = loss, st.index in top
            chosen = [st for st, _ in pairs if st.index in top and not st.done]
            ended = await self._phase(chosen, lambda st: self.intervene(st, turn, *by[st.index]))
            ends = {st.index: e for st, e in zip(chosen, ended) if e is not None}
            for st, (_, _, step_ended) in pairs:
                if not st.done:
                    self.check(st, ends.get(st.index, step_ended), turn)
            live = [st for st in live if not st.done]
            if not live:
                break
        for st in states:
            st.finished = st.finished or self.now()

    async def _phase(self, live: list[SampleState], make: Any) -> list[Any]:
        """Run one stage for every live sample together; each waits for the slowest (its wait)."""
        ends: dict[int, float] = {}

        async def one(st: SampleState) -> Any:
            out = await self.guarded(st, make(st))
            ends[st.index] = self.now()
            return out

        results = await asyncio.gather(*(one(st) for st in live))
        barrier = self.now()
        for st in live:
            st.wait += barrier - ends[st.index]
            if st.done and not st.finished:
                st.finished = barrier
        return list(results)


def arithmetic_intensity(t_compute: float, t_memory: float, t_sync: float) -> float:
    """The paper's asynchronous arithmetic intensity r = T_c / (T_m + T_s): compute time over memory
    time plus synchronisation wait (diagnostic; in the synchronous variant T_s grows with m)."""
    denominator = t_memory + t_sync
    return float("inf") if denominator <= 0 else t_compute / denominator


def _loss_key(loss: float | None) -> float:
    """Rank unscorable steps (None: budget ran out) first among doubtful ones."""
    return float("inf") if loss is None else loss
