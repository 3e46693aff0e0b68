"""`hf_head` backend: a transformers model with a classification head (a reward model or a
step-level PRM), served to a recipe role like any other model. Requests from every candidate and
problem that arrive within a few milliseconds share one padded forward pass. It classifies only:
generation, streaming and scoring refuse in one line (capability `classify`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tts.backends.base import LOAD_LOCK, Backend, BackendError, brief, started
from tts.backends.models import resolve_model
from tts.cost.shape import ModelShape
from tts.progress import phase
from tts.types import Capabilities, CapabilityError, Generation, Sampling, StreamDelta

log = logging.getLogger(__name__)
HEADS = ("sequence", "token")


@dataclass
class _Request:
    ids: list[int]
    future: asyncio.Future = field(repr=False)


class HFHeadBackend(Backend):
    """`await backend.classify(ids)`: the head's raw logits for one input — the last real token's row
    for a `sequence` head, every token's row for a `token` head (e.g. Qwen2.5-Math-PRM)."""

    name = "hf_head"

    def __init__(self, model: str, head: str = "sequence", tokenizer: str | None = None, device: str = "cpu",
                 dtype: str = "auto", batch_size: int = 16, batch_wait_ms: float = 5.0,
                 trust_remote_code: bool = False) -> None:
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got '{head}'")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model_path, self.tokenizer_path, self.head = model, tokenizer, head
        self.device, self.dtype, self.trust_remote_code = device, dtype, trust_remote_code
        self.batch_size, self.batch_wait = batch_size, batch_wait_ms / 1000
        self._model: Any = None
        self._tokenizer: Any = None
        self._shape: ModelShape | None = None
        self.forward_passes = 0
        self._queue: list[_Request] = []
        self._flusher: asyncio.Task | None = None
        self._load_lock = asyncio.Lock()
        self._run_lock = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(generation=False, token_prompts=False, streaming=False, scoring=False, classify=True)

    @property
    def tokenizer(self) -> Any:
        return started(self._tokenizer, "hf_head")

    @property
    def shape(self) -> ModelShape:
        return started(self._shape, "hf_head")

    def stats(self) -> dict[str, Any]:
        return {"forward_passes": self.forward_passes}

    # -- loading -------------------------------------------------------------------------------
    async def start(self) -> None:
        async with self._load_lock:
            if self._model is None:
                await asyncio.to_thread(self._load_serialised)

    def _load_serialised(self) -> None:
        """transformers' loading is not thread-safe: one model at a time, with the other backends'."""
        with LOAD_LOCK:
            self._load()

    def _load(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification
        from transformers import AutoTokenizer

        path, _ = resolve_model(self.model_path)
        t0 = time.perf_counter()
        kw: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.dtype != "auto":
            kw["dtype"] = getattr(torch, self.dtype)
        auto = AutoModelForSequenceClassification if self.head == "sequence" else AutoModelForTokenClassification
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path or path, trust_remote_code=self.trust_remote_code)
            try:
                model = auto.from_pretrained(path, **kw)
            except ValueError:
                if not self.trust_remote_code:
                    raise
                from transformers import AutoModel  # remote-code heads (Qwen2.5-Math-PRM) register here

                model = AutoModel.from_pretrained(path, **kw)
            config = AutoConfig.from_pretrained(path, trust_remote_code=self.trust_remote_code)
        except Exception as exc:  # transformers raises many types; the user needs one line
            raise BackendError(f"hf_head backend: '{self.model_path}' would not load as a {self.head} "
                               f"classifier: {brief(exc, 1)}") from None
        self._model = model.to(self.device).eval()
        self._shape = ModelShape.from_hf_config(config, params=sum(p.numel() for p in model.parameters()))
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)
        if getattr(self._model.config, "pad_token_id", None) is None:
            self._model.config.pad_token_id = self.pad_id
        self._tokenizer = tokenizer
        phase(f"hf_head backend: {self.model_path} ({self.head} head) loaded on {self.device}", t0)

    # -- requests ------------------------------------------------------------------------------
    async def classify(self, prompt_ids: list[int]) -> list[float] | list[list[float]]:
        """The head's logits for `prompt_ids`, batched with concurrent requests."""
        if not prompt_ids:
            raise ValueError("a reward model's input is empty")
        await self.start()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(list(prompt_ids), fut))
        if len(self._queue) >= self.batch_size:
            await self._flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())
        return await fut

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.batch_wait)
        await self._flush()

    async def _flush(self) -> None:
        async with self._run_lock:
            while self._queue:
                batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size:]
                try:
                    rows = await asyncio.to_thread(self._forward, [r.ids for r in batch])
                except Exception as exc:  # fail these requests, keep the backend usable
                    for r in batch:
                        if not r.future.done():
                            r.future.set_exception(BackendError(f"hf_head backend: forward failed: {brief(exc)}"))
                    continue
                for r, row in zip(batch, rows):
                    if not r.future.done():
                        r.future.set_result(row)

    def _forward(self, batch: list[list[int]]) -> list[Any]:
        import torch

        width = max(map(len, batch))
        ids = torch.tensor([b + [self.pad_id] * (width - len(b)) for b in batch], device=self.device)
        mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch], device=self.device)
        self.forward_passes += 1
        with torch.no_grad():
            out = self._model(input_ids=ids, attention_mask=mask)
        logits = (out.logits if hasattr(out, "logits") else out[0]).float()
        if self.head == "token":
            return [logits[i, : len(b)].tolist() for i, b in enumerate(batch)]
        if logits.dim() == 3:  # a head that returns per-token rows: take the last real token
            return [logits[i, len(b) - 1].tolist() for i, b in enumerate(batch)]
        return [logits[i].tolist() for i in range(len(batch))]

    async def close(self) -> None:
        self._model = None

    # -- what a head cannot do -----------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        raise CapabilityError("backend 'hf_head' lacks generation (a classification head; use it as a selector's role)")

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[StreamDelta]:
        raise CapabilityError("backend 'hf_head' lacks streaming (a classification head)")
        yield  # pragma: no cover  (an async generator)

    async def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> list[float]:
        raise CapabilityError("backend 'hf_head' lacks scoring (a classification head has no log-probs)")
