"""`reroute`: samples from a Mixture-of-Experts model with test-time router adaptation
(`tts.learn.reroute`, spec moe-rerouting.md). Needs the hf backend (gradients); the model is
leased for the problem's samples, so no other problem's request runs on half-adapted routers.
Every optimisation phase is charged to the ledger as a `learn` call (n = its optimiser steps),
every continuation as a `generate` call."""

from __future__ import annotations

import asyncio
import time

from tts.context import StrategyContext
from tts.cost.model import Usage
from tts.strategies.base import Generator
from tts.types import Candidate, Problem


class Reroute(Generator):
    name = "reroute"
    iid = True

    def __init__(self, role: str = "policy", n_layers: int = 4, layers: list[int] | None = None,
                 steps_prefill: int = 10, steps_reopt: int = 5, lr: float = 5e-2, interval: int = 128,
                 layer_metric: str = "topk_mass", max_opt_tokens: int = 4096, l2: float = 0.0,
                 rebuild_cache: bool = True, validate: list[int] | None = None) -> None:
        from tts.learn.reroute import RerouteSettings

        if min(n_layers, interval, max_opt_tokens) < 1 or min(steps_prefill, steps_reopt) < 0 or lr <= 0:
            raise ValueError("reroute needs n_layers, interval, max_opt_tokens >= 1, steps >= 0 and lr > 0")
        if layer_metric not in ("topk_mass", "neg_entropy"):
            raise ValueError(f"layer_metric must be topk_mass or neg_entropy, got '{layer_metric}'")
        self.role = role
        self.settings = RerouteSettings(n_layers, tuple(layers) if layers else None, steps_prefill, steps_reopt, lr,
                                        interval, layer_metric, max_opt_tokens, l2, rebuild_cache,
                                        tuple(validate) if validate else None)

    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        from tts.learn.reroute import Rerouter

        role = ctx.role(self.role)
        backend = role.backend
        backend.capabilities.require(f"{backend.name} (role '{self.role}', for reroute)", gradients=True, lease=True)
        prompt, sampling = role.prompt(), role.sampling()
        eos = backend.eos_ids
        stop = _stopper(role, sampling.stop)
        out = []
        async with backend.lease() as model:
            rerouter = Rerouter(model, self.settings)
            for i in range(n):
                t0 = time.perf_counter()
                call = f"reroute/s{i}"
                ids, logprobs, trace = await asyncio.to_thread(rerouter.generate, prompt, sampling, ctx.seed(call),
                                                               eos, stop)
                learn_s = trace.seconds_learning
                if trace.learn_tokens:
                    role.account(Usage("learn", sum(trace.learn_tokens), n=len(trace.learn_tokens)), learn_s, call)
                role.account(Usage("generate", len(prompt), 0, (len(ids),)), time.perf_counter() - t0 - learn_s, call)
                out.append(ctx.candidate(  # its eFLOPs: its decoding and the router refits it needed
                    self.role, i, ids, role.decode(ids), calls=(call,), seed=ctx.seed(call), logprobs=logprobs,
                    finish_reason="stop" if ids and ids[-1] in eos else "length", prompt_tokens=len(prompt),
                    meta={"layers": trace.layers, "reopt_at": trace.reopt_at, "delta_norm": trace.delta_norm,
                          "prefill_steps": trace.prefill_steps, "learn_steps": len(trace.learn_tokens),
                          "final_loss": trace.losses[-1][2] if trace.losses else None}))
        return out


def _stopper(role, stops: tuple[str, ...]):
    if not stops:
        return None
    width = max(len(s) for s in stops) + 8

    def stop(ids: list[int]) -> bool:
        tail = role.decode(ids[-width:])
        return any(s in tail for s in stops)

    return stop


__all__ = ["Reroute"]
