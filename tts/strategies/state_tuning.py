"""`state_tuning`: answer from a tuned RWKV-7 initial state (tts.learn.rwkv7.state_tuning; spec
rwkv7-state-tuning.md). Per problem, the examples to tune on are the problem's own
(`problem.meta["examples"]`: texts whose every token is learned) or, when the problem has none, the
recipe's `examples:` list or `train:` dataset (a task's training split: "problem answer" texts); the state is tuned from zeros — or from the best
state of a `library:` folder, picked by loss on those examples (`steps: 0` uses it as is) — then the
prompt is decoded from it by the backend (`TunedState`, per-request model state). States are cached
per example set; the model is leased while tuning (weights frozen, but the forward runs outside the
backend's worker). Tuning is charged as a `learn` ledger entry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tts.context import StrategyContext
from tts.cost.model import Usage
from tts.strategies.base import Generator
from tts.types import Candidate, CapabilityError, Problem


class StateTuning(Generator):
    name = "state_tuning"
    iid = True
    nested = {"train": "datasets"}  # a dataset spec, built by tts.components.build

    def __init__(self, role: str = "policy", steps: int = 100, lr: float = 1.0, lr_final: float = 1e-2,
                 examples: list[str] | None = None, train: Any = None, max_examples: int = 64,
                 library: str | None = None, save_to: str | None = None) -> None:
        from tts.learn.rwkv7.state_tuning import TuneSettings

        if steps < 0 or lr <= 0 or lr_final <= 0:
            raise ValueError("state_tuning needs steps >= 0 and positive learning rates")
        if steps == 0 and not library:
            raise ValueError("state_tuning with steps: 0 needs a library: of tuned states to pick from")
        self.role, self.examples, self.library, self.save_to = role, list(examples or []), library, save_to
        if isinstance(train, (str, dict)):
            raise TypeError("train must be a built dataset (tts.components.build builds it from a recipe)")
        if train is not None and not self.examples:
            split = train.load()[:max_examples]
            self.examples = [f"{p.problem} {p.answer}" for p in split if p.answer is not None]
        self.settings = TuneSettings(steps=steps, lr=lr, lr_final=lr_final, warmup=min(10, max(steps // 10, 1)))
        self._states: dict[tuple, Any] = {}

    def _rows(self, problem: Problem, role: Any) -> list[tuple[Any, Any]]:
        import torch

        texts = problem.meta.get("examples") or self.examples
        if not texts:
            raise ValueError(f"state_tuning: problem {problem.id} has no meta['examples'] and the recipe gives none")
        out = []
        for text in texts:
            ids = torch.tensor([role.encode(text)])
            out.append((ids, ids.clone()))
        return out

    def _tune(self, model: Any, rows: list, key: tuple) -> tuple[Any, dict]:
        from tts.learn.rwkv7.state_tuning import StateBank, StateTuner

        info: dict[str, Any] = {}
        init = None
        if self.library:
            name, init, losses = StateBank(self.library).pick(model, rows)
            info.update(library_pick=name, library_losses=losses)
        tuner = StateTuner(model, init)
        if self.settings.steps:
            losses = tuner.fit(rows, self.settings)
            info.update(first_loss=losses[0], final_loss=losses[-1])
        if self.save_to:
            info["saved"] = str(StateBank(self.save_to).add(f"s{abs(hash(key)) % 10**10}", tuner,
                                                              final_loss=info.get("final_loss")))
        return tuner, info

    async def _tune_once(self, model: Any, rows: list, key: tuple, role: Any) -> None:
        if not hasattr(model.config, "head_size") or not getattr(model, "tts_recurrent", False):
            raise CapabilityError(f"state_tuning needs an RWKV-7 model (tts_rwkv7); got {type(model).__name__}")
        t0 = time.perf_counter()
        self._states[key] = await asyncio.to_thread(self._tune, model, rows, key)
        tokens = sum(r[0].shape[1] for r in rows)
        steps = self.settings.steps
        role.account(Usage("learn", tokens * max(steps, 1) // max(len(rows), 1), n=max(steps, 1)),
                     time.perf_counter() - t0)

    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        from tts.learn.rwkv7.state_tuning import TunedState

        role = ctx.role(self.role)
        backend = role.backend
        backend.capabilities.require(f"{backend.name} (role '{self.role}', for state_tuning)", gradients=True,
                                     lease=True, request_state=True)
        rows = self._rows(problem, role)
        key = tuple(tuple(r[0][0].tolist()) for r in rows)
        if key not in self._states:
            async with backend.lease() as model:  # tuning trains through the frozen model: exclusive use
                if key not in self._states:  # another problem with these examples may have tuned it meanwhile
                    await self._tune_once(model, rows, key, role)
        tuner, info = self._states[key]
        gen = await role.generate(role.prompt(), role.sampling(n=n), state=TunedState(tuner))
        return ctx.candidates(gen, self.role, meta=[dict(info) for _ in gen.completions])


__all__ = ["StateTuning"]
