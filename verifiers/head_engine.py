"""A model with a classification head (sequence or token level), loaded on first use and batched
across concurrent callers, whichever problem they come from: `hf` (transformers; requests that
arrive within a few milliseconds share one padded forward pass) or `vllm` (the engine's pooling
runner, continuously batched). `make_head` picks one by name."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from tts.backends.base import LOAD_LOCK, BackendError
from tts.cost.shape import ModelShape

log = logging.getLogger(__name__)
KINDS = ("sequence", "token")


@dataclass
class _Request:
    ids: list[int]
    future: asyncio.Future = field(repr=False)


class HeadEngine:
    """`await engine.logits(ids)`: the head's logits for one input — the last real token's row for
    a sequence head, every token's row for a token head (e.g. a step-level PRM)."""

    def __init__(self, model: str, kind: str = "sequence", device: str = "cpu", dtype: str = "auto",
                 batch_size: int = 16, batch_wait_ms: float = 5.0, trust_remote_code: bool = False) -> None:
        if kind not in KINDS:
            raise ValueError(f"head kind must be one of {', '.join(KINDS)}, got '{kind}'")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model_path, self.kind, self.device, self.dtype = model, kind, device, dtype
        self.batch_size, self.batch_wait = batch_size, batch_wait_ms / 1000
        self.trust_remote_code = trust_remote_code
        self.model: Any = None
        self.tokenizer: Any = None
        self.shape: ModelShape | None = None
        self.forward_passes = 0
        self._queue: list[_Request] = []
        self._flusher: asyncio.Task | None = None
        self._load_lock = asyncio.Lock()
        self._run_lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._load_lock:
            if self.model is None:
                await asyncio.to_thread(self._load_serialised)

    def _load_serialised(self) -> None:
        """transformers' loading is not thread-safe: one model at a time, with the backends' loads."""
        with LOAD_LOCK:
            self._load()

    def _load(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification
        from transformers import AutoTokenizer

        from tts.backends.models import resolve_model

        path, _ = resolve_model(self.model_path)
        kw: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.dtype != "auto":
            kw["dtype"] = getattr(torch, self.dtype)
        auto = AutoModelForSequenceClassification if self.kind == "sequence" else AutoModelForTokenClassification
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.trust_remote_code)
            try:
                model = auto.from_pretrained(path, **kw)
            except ValueError:
                if not self.trust_remote_code:
                    raise
                from transformers import AutoModel  # remote-code heads (Qwen2.5-Math-PRM) register here

                model = AutoModel.from_pretrained(path, **kw)
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"reward model '{self.model_path}' would not load as a {self.kind} "
                               f"classifier: {str(exc).splitlines()[0]}") from None
        self.model = model.to(self.device).eval()
        self.shape = ModelShape.from_hf_config(AutoConfig.from_pretrained(path, trust_remote_code=self.trust_remote_code),
                                               params=sum(p.numel() for p in model.parameters()))
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        if getattr(self.model.config, "pad_token_id", None) is None:
            self.model.config.pad_token_id = self.pad_id

    async def logits(self, ids: list[int]) -> list[float] | list[list[float]]:
        """The head's logits for `ids` (batched with concurrent requests)."""
        if not ids:
            raise ValueError("reward model input is empty")
        await self.start()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(list(ids), fut))
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
                except Exception as exc:  # fail these requests, keep the engine usable
                    for r in batch:
                        if not r.future.done():
                            r.future.set_exception(BackendError(f"reward model forward failed: {exc}"))
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
            out = self.model(input_ids=ids, attention_mask=mask)
        logits = (out.logits if hasattr(out, "logits") else out[0]).float()
        if self.kind == "token":
            return [logits[i, : len(b)].tolist() for i, b in enumerate(batch)]
        if logits.dim() == 3:  # a head that returns per-token rows: take the last real token
            return [logits[i, len(b) - 1].tolist() for i, b in enumerate(batch)]
        return [logits[i].tolist() for i in range(len(batch))]

    async def close(self) -> None:
        self.model = None


class VLLMHead:
    """The same interface over a vLLM pooling engine (`runner: pooling`), raw head outputs."""

    def __init__(self, model: str, kind: str = "sequence", device: str = "cpu", dtype: str = "auto",
                 batch_size: int = 16, batch_wait_ms: float = 5.0, trust_remote_code: bool = False,
                 **engine: Any) -> None:
        from tts.backends.vllm import VLLMBackend

        if kind not in KINDS:
            raise ValueError(f"head kind must be one of {', '.join(KINDS)}, got '{kind}'")
        self.kind, self.forward_passes = kind, 0
        args = {"runner": "pooling", "trust_remote_code": trust_remote_code, **engine.pop("engine_args", {})}
        self.backend = VLLMBackend(model, dtype=dtype, engine_args=args, **engine)

    async def start(self) -> None:
        await self.backend.start()

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    @property
    def shape(self) -> ModelShape | None:
        return self.backend.shape

    async def logits(self, ids: list[int]) -> list[float] | list[list[float]]:
        self.forward_passes += 1
        row = await self.backend.pool(ids, "classify" if self.kind == "sequence" else "token_classify")
        return row

    async def close(self) -> None:
        await self.backend.close()


HEAD_BACKENDS = {"hf": HeadEngine, "vllm": VLLMHead}


def make_head(backend: str, model: str, kind: str, **kwargs: Any) -> Any:
    """A head engine by backend name (`hf` or `vllm`)."""
    if backend not in HEAD_BACKENDS:
        raise ValueError(f"reward model backend must be one of {', '.join(HEAD_BACKENDS)}, got '{backend}'")
    return HEAD_BACKENDS[backend](model, kind, **kwargs)
