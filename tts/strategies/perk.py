"""`perk`: answer from a LoRA written from the problem's context at test time (spec perk.md; see
tts.learn.perk). Per problem: the context (`problem.meta["context"]`: a list of segments, or one text
cut into `segment_tokens`-token pieces) becomes `prefix`-labelled segments, the meta-learned adapter
is adapted to them on the `encoder` role — an hf role whose model is the PERK checkpoint, leased
while it encodes — and the answer is generated with the context *out* of the prompt: on the
encoder's own backend, the adapted tensors applied to that request only (`AdaptedLoRA`, per-request
model state), or, when the answering role is another backend that serves LoRA (vLLM with
`lora: true`), through it with the adapter saved by peft and loaded by path. One copy of the model;
the encoding is charged to the encoder role's ledger as a `learn` call, priced with its shape."""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from tts.context import StrategyContext
from tts.cost.model import Usage
from tts.strategies.base import Generator
from tts.types import Candidate, CapabilityError, Problem

_KEEP = 8


class PerkGenerator(Generator):
    name = "perk"
    iid = True

    def __init__(self, role: str = "policy", encoder: str | None = None, prefix: str = "doc_{i}:",
                 segment_tokens: int = 256, append_eos: bool = True, groups: int = 1,
                 checkpoint: str | None = None) -> None:
        if checkpoint is not None:
            raise ValueError("perk: `checkpoint:` is gone — make the PERK checkpoint the model of an hf role "
                             "(`roles.policy.model: toy:perk_recall`, or an `encoder:` role) so one copy is loaded")
        if segment_tokens < 1 or groups < 1:
            raise ValueError("perk needs segment_tokens >= 1 and groups >= 1")
        if "{i}" not in prefix:
            raise ValueError(f"perk: prefix must contain {{i}} (the segment's number), got '{prefix}'")
        self.role, self.encoder, self.prefix = role, encoder or role, prefix
        self.segment_tokens, self.append_eos, self.groups = segment_tokens, append_eos, groups
        self._adapted: dict[tuple, tuple[Any, dict]] = {}  # context -> (PERK, adapted tensors), shared by its questions
        self._adapting: dict[tuple, asyncio.Future] = {}

    # -- context -> segments -------------------------------------------------------------------
    def segments(self, problem: Problem, role: Any) -> list[tuple[list[int], list[int]]]:
        """(ids, labels) rows: `prefix` (unlabelled) + the segment's tokens (+ eos)."""
        context = problem.meta.get("context")
        if not context:
            raise ValueError(f"perk: problem {problem.id} has no meta['context'] to encode")
        if isinstance(context, str):
            ids = role.encode(context)
            bodies = [ids[i:i + self.segment_tokens] for i in range(0, len(ids), self.segment_tokens)]
        else:
            bodies = [role.encode(str(s)) for s in context]
        eos = [role.tokenizer.eos_token_id] if self.append_eos and role.tokenizer.eos_token_id is not None else []
        rows = []
        for i, body in enumerate(bodies):
            head = role.encode(self.prefix.format(i=i))
            rows.append(([*head, *body, *eos], [-100] * len(head) + [*body, *eos]))
        return rows

    # -- sampling ------------------------------------------------------------------------------
    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        from tts.learn.perk import AdaptedLoRA

        role, encoder = ctx.role(self.role), ctx.role(self.encoder)
        where = f"{encoder.backend.name} (role '{self.encoder}', the perk encoder)"
        encoder.backend.capabilities.require(where, gradients=True, lease=True)
        perk, params = await self._adapt(self.segments(problem, encoder), encoder)
        if self.role == self.encoder:  # answer on the same model, the adapted tensors on this request only
            gen = await role.generate(role.prompt(), role.sampling(n=n), state=AdaptedLoRA(perk, params))
        elif role.backend.capabilities.lora:
            gen = await self._served(problem, ctx, role, encoder, perk, params, n)
        else:
            raise CapabilityError(f"perk: role '{self.role}' ({role.backend.name}) loads no LoRA adapters; answer on "
                                  f"the encoder role '{self.encoder}' or serve with vLLM `lora: true`")
        return ctx.candidates(gen, self.role, meta=[{"adapted": True} for _ in gen.completions])

    async def _adapt(self, rows: list, encoder: Any) -> tuple[Any, dict]:
        """The adapted tensors for this context: encoded once under the encoder's lease (charged as a
        `learn` call) and shared by every question on the same context (the last `_KEEP` are kept)."""
        key = tuple(tuple(ids) for ids, _ in rows)
        if key in self._adapted:
            return self._adapted[key]
        if key in self._adapting:
            return await asyncio.shield(self._adapting[key])
        future = self._adapting[key] = asyncio.get_running_loop().create_future()
        try:
            t0 = time.perf_counter()
            async with encoder.backend.lease() as perk:
                if not hasattr(perk, "encode"):
                    raise CapabilityError(f"perk: role '{self.encoder}' does not serve a PERK checkpoint "
                                          f"(its model: {type(perk).__name__}); make one with `tts learn perk`")
                batch = _batch(rows, encoder.tokenizer.pad_token_id or 0, perk)
                params = await asyncio.to_thread(perk.encode, batch, self.groups)
            steps = perk.config.inner_steps
            encoder.account(Usage("learn", int(batch.attention_mask.sum()) * steps, n=steps),
                            time.perf_counter() - t0)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._adapting.pop(key, None)
        self._adapted[key] = (perk, params)
        while len(self._adapted) > _KEEP:
            self._adapted.pop(next(iter(self._adapted)))
        future.set_result((perk, params))
        return perk, params

    async def _served(self, problem: Problem, ctx: StrategyContext, role: Any, encoder: Any, perk: Any,
                      params: dict, n: int) -> Any:
        """The adapted adapter saved with peft (under the encoder's lease), loaded into the answering
        engine, used, removed."""
        name = f"perk-{abs(hash((problem.id, ctx.run_seed, id(params))))}"
        with tempfile.TemporaryDirectory(prefix="perk-lora-") as folder:
            async with encoder.backend.lease():
                await asyncio.to_thread(perk.export_lora, params, folder)
            await role.backend.add_lora(name, folder)
            try:
                sampling = role.sampling(n=n)
                return await role.generate(role.prompt(), sampling.replace(extra={**sampling.extra, "lora": name}))
            finally:
                await role.backend.remove_lora(name)


def _batch(rows: list, pad: int, perk: Any) -> Any:
    from tts.learn.perk import Batch

    batch = Batch.from_rows(rows, pad)
    device = next(perk.parameters()).device
    return Batch(batch.input_ids.to(device), batch.attention_mask.to(device), batch.labels.to(device))


__all__ = ["PerkGenerator"]
