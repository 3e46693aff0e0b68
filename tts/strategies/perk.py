"""`perk`: answer from a LoRA written from the problem's context at test time (spec perk.md; see
tts.learn.perk). Per problem: the context (`problem.meta["context"]`: a list of segments, or one text
cut into `segment_tokens`-token pieces) becomes `prefix`-labelled segments, the meta-learned adapter
is adapted to them (functionally: the shared model is never left half-adapted, so problems may run
concurrently), and the answer is generated with the context *out* of the prompt — in process, or,
when the role's backend serves LoRA (vLLM with `lora: true`), through it with the adapter saved by
peft and loaded by path. The encoding is charged to the ledger as a `learn` call."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tts.context import StrategyContext
from tts.cost.model import Usage
from tts.strategies.base import Generator
from tts.types import Candidate, Completion, Generation, Problem, Sampling

_LOADED: dict[tuple[str, str], tuple[Any, threading.Lock]] = {}
_LOAD = threading.Lock()
_KEEP = 8


def _perk(checkpoint: str, device: str) -> tuple[Any, threading.Lock]:
    """One PERK per (checkpoint, device) in the process, with the lock its forward passes take
    (functional_call swaps the module's parameters while it runs)."""
    from tts.backends.base import LOAD_LOCK
    from tts.learn.train_perk import load

    key = (checkpoint, device)
    with _LOAD:
        if key not in _LOADED:
            with LOAD_LOCK:
                _LOADED[key] = (load(checkpoint, device=device), threading.Lock())
        return _LOADED[key]


class PerkGenerator(Generator):
    name = "perk"
    iid = True

    def __init__(self, checkpoint: str, role: str = "policy", prefix: str = "doc_{i}:", segment_tokens: int = 256,
                 append_eos: bool = True, groups: int = 1, device: str | None = None, best: bool = True) -> None:
        from tts.backends.models import resolve_model

        if segment_tokens < 1 or groups < 1:
            raise ValueError("perk needs segment_tokens >= 1 and groups >= 1")
        if "{i}" not in prefix:
            raise ValueError(f"perk: prefix must contain {{i}} (the segment's number), got '{prefix}'")
        folder = Path(resolve_model(checkpoint)[0])
        if not (folder / "perk.pt").exists():
            raise ValueError(f"perk: '{checkpoint}' is not a PERK checkpoint (no perk.pt in {folder}); "
                             f"make one with `tts learn perk --out DIR`")
        self.checkpoint, self.role, self.prefix = str(folder), role, prefix
        self.segment_tokens, self.append_eos, self.groups, self.best = segment_tokens, append_eos, groups, best
        self.device = device
        self._adapted: dict[tuple, dict] = {}  # context -> adapted tensors (questions sharing a context)
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
        import torch

        role = ctx.role(self.role)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        perk, lock = await asyncio.to_thread(_perk, self.checkpoint, device)
        rows = self.segments(problem, role)
        params = await self._adapt(rows, role, perk, lock, device)
        if role.backend.capabilities.lora:  # loads adapters at run time: serve the written one
            return await self._served(problem, ctx, role, perk, lock, params, n)
        return await self._in_process(problem, ctx, role, perk, lock, params, n, device)

    async def _adapt(self, rows: list, role: Any, perk: Any, lock: threading.Lock, device: str) -> dict:
        """The adapted tensors for this context: encoded once (charged as a `learn` call) and shared by
        every question on the same context (the last `_KEEP` contexts are kept)."""
        from tts.learn.perk import Batch

        key = tuple(tuple(ids) for ids, _ in rows)
        if key in self._adapted:
            return self._adapted[key]
        if key in self._adapting:
            return await asyncio.shield(self._adapting[key])
        future = self._adapting[key] = asyncio.get_running_loop().create_future()
        try:
            batch = Batch.from_rows(rows, role.tokenizer.pad_token_id or 0)
            t0 = time.perf_counter()
            params = await asyncio.to_thread(self._encode, perk, lock, batch, device)
            tokens = int(batch.attention_mask.sum())
            role.account(Usage("learn", tokens * perk.config.inner_steps, n=perk.config.inner_steps),
                         time.perf_counter() - t0)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._adapting.pop(key, None)
        self._adapted[key] = params
        while len(self._adapted) > _KEEP:
            self._adapted.pop(next(iter(self._adapted)))
        future.set_result(params)
        return params

    def _encode(self, perk: Any, lock: threading.Lock, batch: Any, device: str) -> dict:
        from tts.learn.perk import Batch

        on = Batch(batch.input_ids.to(device), batch.attention_mask.to(device), batch.labels.to(device))
        with lock:
            return perk.encode(on, groups=self.groups)

    async def _served(self, problem: Problem, ctx: StrategyContext, role: Any, perk: Any, lock: threading.Lock,
                      params: dict, n: int) -> list[Candidate]:
        """The adapted adapter saved with peft, loaded into the vLLM engine, used, removed."""
        prompt = role.prompt()
        name = f"perk-{abs(hash((problem.id, ctx.run_seed, id(params))))}"
        with tempfile.TemporaryDirectory(prefix="perk-lora-") as folder:
            def export() -> None:
                with lock:
                    perk.export_lora(params, folder)

            await asyncio.to_thread(export)
            await role.backend.add_lora(name, folder)
            try:
                sampling = role.sampling(n=n, seed=ctx.seed(f"{self.role}:perk"))
                gen = await role.generate(prompt, sampling.replace(extra={**sampling.extra, "lora": name}))
            finally:
                await role.backend.remove_lora(name)
        return ctx.candidates(gen, self.role, start=0, iid=True)

    async def _in_process(self, problem: Problem, ctx: StrategyContext, role: Any, perk: Any, lock: threading.Lock,
                          params: dict, n: int, device: str) -> list[Candidate]:
        prompt, sampling = role.prompt(), role.sampling()
        eos = role.tokenizer.eos_token_id
        completions = []
        for i in range(n):
            seed = ctx.seed(f"{self.role}:perk") + i
            t0 = time.perf_counter()

            def run() -> tuple[list[int], list[float]]:
                with lock:
                    return decode(perk, params, prompt, sampling, seed, eos, device)

            ids, logprobs = await asyncio.to_thread(run)
            role.account(Usage("generate", len(prompt), 0, (len(ids),)), time.perf_counter() - t0)
            completions.append(Completion(ids, role.decode(ids), logprobs,
                                          "stop" if ids and ids[-1] == eos else "length", seed))
        out = ctx.candidates(Generation(completions, len(prompt)), self.role)
        for cand in out:
            cand.meta["adapted"] = True
        return out


def decode(perk: Any, params: dict, prompt: list[int], sampling: Sampling, seed: int,
           eos: int | None, device: str) -> tuple[list[int], list[float]]:
    """Sample from the base with the adapted LoRA tensors (full recompute per token: answers are
    short), with the hf backend's sampler and seeding (`tts.learn.sampling`)."""
    import torch

    from tts.learn.perk import Batch
    from tts.learn.sampling import RowSampler

    sampler = RowSampler(sampling, seed, () if eos is None else (eos,))
    ids: list[int] = []
    logprobs: list[float] = []
    for _ in range(sampling.max_tokens):
        row = torch.tensor([[*prompt, *ids]], device=device)
        logits = perk.answer_logits(params, Batch(row, torch.ones_like(row), row))[0, -1].float().cpu()
        tok, lp = sampler.pick(logits)
        ids.append(tok)
        logprobs.append(lp)
        if sampler.done(tok):
            break
    return ids, logprobs


__all__ = ["PerkGenerator", "decode"]
