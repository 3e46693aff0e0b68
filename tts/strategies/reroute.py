"""`reroute`: samples from a Mixture-of-Experts model with test-time router adaptation
(`tts.learn.reroute`, spec moe-rerouting.md). Needs a backend with gradients and per-request model
state (hf): the backend decodes the request alone under `RerouteState`, so no other problem's
request runs on half-adapted routers. Each sample's optimisation is charged to the ledger as a
`learn` call (n = its optimiser steps), its extra prefills (its own prompt, cache rebuilds) as a
`score` call, the continuations as one `generate` call."""

from __future__ import annotations

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
        from tts.learn.reroute import RerouteState

        role = ctx.role(self.role)
        backend = role.backend
        backend.capabilities.require(f"{backend.name} (role '{self.role}', for reroute)", gradients=True,
                                     request_state=True)
        state = RerouteState(self.settings)
        call = ctx.next_call_path(f"{self.role}:reroute")
        gen = await role.generate(role.prompt(), role.sampling(n=n), call=call, state=state)
        also = []
        for i, trace in enumerate(state.traces):
            row = ctx.call(call, f"s{i}")
            if trace.learn_tokens:  # the router refits of this sample
                role.account(Usage("learn", sum(trace.learn_tokens), n=len(trace.learn_tokens)),
                             trace.seconds_learning, ctx.call(row, "learn"))
            if state.rebuilt[i]:  # its own prompt prefill and every cache rebuild
                role.account(Usage("score", state.rebuilt[i]), 0.0, ctx.call(row, "prefill"))
            also.append((ctx.call(row, "learn"), ctx.call(row, "prefill")))
        meta = [{"layers": t.layers, "reopt_at": t.reopt_at, "delta_norm": t.delta_norm,
                 "prefill_steps": t.prefill_steps, "learn_steps": len(t.learn_tokens),
                 "final_loss": t.losses[-1][2] if t.losses else None} for t in state.traces]
        return ctx.candidates(gen, self.role, also=also, meta=meta)


__all__ = ["Reroute"]
