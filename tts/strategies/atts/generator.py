"""`atts`: asynchronous draft/target test-time scaling with conformal rejection (Xiong et al.,
arXiv 2509.15148), as a generator — its m samples go to any aggregator.

Per problem: (0) online calibration — `calibration_samples` draft first steps scored by the
target fill the bank (one bank for all questions, or one per question); then m samples run as
independent coroutines, each turn: the draft writes a step, the target scores it (mean NLL), the
conformal test sends it to the target iff p > 1 - alpha, the target continues after the kept step
(`on_reject: replace` is our labelled variant: the step is dropped and the target rewrites it), and
the sample stops at an answer. `mode: sync` is the synchronous baseline (every phase waits for all
live samples; the top-B losses go to the target). Reconstruction, per the spec: the raw-prompt
continuation (no chat-message history), EOS ending a sample, unscorable steps always rejected."""

from __future__ import annotations

import asyncio
import logging
import time

from tts.context import StrategyContext
from tts.seeds import call_path
from tts.strategies.atts.conformal import MODES, ConformalCalibrator, alpha_for_budget
from tts.strategies.atts.runner import SampleState, Turns, TurnSettings
from tts.strategies.atts.transcript import StepScorer, Transcript, strip_eos
from tts.strategies.base import Generator
from tts.types import Candidate, Problem

log = logging.getLogger(__name__)
RUN_MODES = ("async", "sync")


class ATTS(Generator):
    """m draft/target samples per problem with per-step conformal rejection."""

    name = "atts"

    def __init__(self, draft: str = "draft", target: str = "target", mode: str = "async", alpha: float = 0.4,
                 target_budget: float | None = None, conformal: str = "marginal",
                 calibration_samples: int | None = None, update_bank: bool = False, bank_max: int | None = None,
                 max_turns: int = 15, draft_max_tokens: int = 500, target_max_tokens: int = 500,
                 draft_temperature: float = 0.8, target_temperature: float = 0.8,
                 step_stop: list[str] | None = None, target_stop: list[str] | None = None,
                 on_reject: str = "continue", stop_on_answer: bool = True) -> None:
        if mode not in RUN_MODES:
            raise ValueError(f"atts mode must be one of {', '.join(RUN_MODES)}, got '{mode}'")
        if on_reject not in ("continue", "replace"):
            raise ValueError(f"on_reject must be 'continue' or 'replace', got '{on_reject}'")
        if conformal not in MODES:
            raise ValueError(f"conformal must be one of {', '.join(MODES)}, got '{conformal}'")
        if max_turns < 1 or draft_max_tokens < 1 or target_max_tokens < 1:
            raise ValueError("max_turns, draft_max_tokens and target_max_tokens must be >= 1")
        if calibration_samples is not None and calibration_samples < 1:
            raise ValueError("calibration_samples must be >= 1")
        if draft == target:
            raise ValueError("atts needs two roles: draft and target must differ")
        self.draft, self.target, self.mode = draft, target, mode
        self.alpha, self.target_budget, self.conformal = alpha, target_budget, conformal
        self.calibration_samples, self.update_bank, self.bank_max = calibration_samples, update_bank, bank_max
        self.settings = TurnSettings(max_turns, draft_max_tokens, target_max_tokens, draft_temperature,
                                     target_temperature, tuple(step_stop or ()), tuple(target_stop or ()),
                                     on_reject, stop_on_answer)
        # samples interact through a shared bank when it is updated, and always in the sync variant
        self.iid = mode == "async" and not update_bank
        self._calibrators: dict[float, ConformalCalibrator] = {}

    def alpha_for(self, m: int) -> float:
        return alpha_for_budget(self.target_budget, m) if self.target_budget is not None else self.alpha

    def calibrator(self, m: int) -> ConformalCalibrator:
        """One calibrator per alpha for the whole run (the marginal bank is shared by every problem)."""
        alpha = self.alpha_for(m)
        if alpha not in self._calibrators:
            self._calibrators[alpha] = ConformalCalibrator(self.conformal, alpha, self.bank_max)
        return self._calibrators[alpha]

    async def calibrate(self, ctx: StrategyContext, turns: Turns, count: int) -> list[float]:
        """Stage 0: `count` draft first steps (the test steps' own sampling), scored by the target."""
        draft, target = turns.draft, turns.target
        gen = await draft.generate(draft.prompt(), turns.draft_sampling(count), call=call_path("atts", "calibrate"))
        prompt = target.prompt()
        steps = [strip_eos(c.token_ids, turns.eos["draft"])[0] for c in gen.completions]
        ids = [s if turns.shared else target.encode(c.text) for s, c in zip(steps, gen.completions)]
        scorer = StepScorer(target)
        return list(await asyncio.gather(*(scorer.score(prompt, x) for x in ids)))

    def _transcript(self, turns: Turns) -> Transcript:
        draft, target = turns.draft, turns.target
        return Transcript({"draft": draft.prompt(), "target": target.prompt()},
                          {"draft": draft.encode, "target": target.encode}, turns.shared)

    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        t0 = time.perf_counter()
        cal = self.calibrator(n) if self.mode == "async" else None
        turns = Turns(ctx, self.draft, self.target, self.settings, cal, self.update_bank, t0)
        info: dict = {"mode": self.mode}
        if cal is not None:
            bank = await self.calibrate(ctx, turns, self.calibration_samples or n)
            cal.fit(bank, problem.id if self.conformal == "per_question" else None)
            info.update(alpha=cal.alpha, bank=cal.size(problem.id), calibration=len(bank))
        states = [SampleState(i, self._transcript(turns)) for i in range(n)]
        if self.mode == "async":
            await asyncio.gather(*(turns.run_async(st) for st in states))
        else:
            budget = self.target_budget if self.target_budget is not None else self.alpha * n
            info["budget"] = max(1, round(budget))
            await turns.run_sync(states, info["budget"])
        log.debug("atts %s: %d samples in %.2fs", problem.id, n, time.perf_counter() - t0)
        return [self._candidate(ctx, st, info) for st in states]

    def _candidate(self, ctx: StrategyContext, st: SampleState, info: dict) -> Candidate:
        text = st.transcript.text()
        steps = st.transcript.steps
        meta = {**info, "steps": [s.to_dict() for s in steps], "turns": st.turns,
                "draft_tokens": st.draft_tokens, "target_tokens": st.target_tokens,
                "scored_tokens": st.scored_tokens, "interventions": st.interventions,
                "rejections": sum(1 for s in steps if s.rejected),
                "started": round(st.started, 4), "finished": round(st.finished, 4),
                "busy_s": round(st.busy, 4), "wait_s": round(st.wait, 4)}
        if st.note:
            meta["note"] = st.note
        ids = st.transcript.completion_ids("draft")
        # its eFLOPs: every draft, target and scoring call of this sample, as the ledger charged them
        return ctx.candidate(self.name, st.index, ids, text, call_prefix=call_path("atts", f"s{st.index}"),
                             seed=ctx.seed(call_path("atts", f"s{st.index}")), logprobs=st.logprobs,
                             finish_reason=st.finish_reason, prompt_tokens=st.transcript.prompt_len["draft"],
                             completion_tokens=st.draft_tokens + st.target_tokens, iid=self.iid, meta=meta)
