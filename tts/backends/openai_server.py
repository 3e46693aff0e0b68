"""`openai` backend: OpenAI-compatible servers (vLLM, SGLang, hosted APIs). Completions with
token-id prompts where the server takes them (vLLM does), n and log-probs, prompt log-probs for
`score` (vLLM servers), streaming that aborts on close, and a pool of endpoints. `api: chat` sends
the messages the role rendered (never decoded ids) for chat-only APIs; prompts without messages
(continuations) and scoring are refused with one line."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from tts.backends.base import Backend, BackendError, started
from tts.backends.endpoints import EndpointPool
from tts.backends.models import resolve_model
from tts.cost.shape import ModelShape
from tts.types import Capabilities, Completion, Generation, Sampling, StreamDelta

log = logging.getLogger(__name__)


class OpenAIBackend(Backend):
    """`model` is the served model name; `tokenizer` (a folder or hub id, default: `model`) renders
    prompts to the same ids the server uses. `base_url` may list several endpoints."""

    name = "openai"

    def __init__(self, model: str, base_url: str | list[str] = "http://127.0.0.1:8000/v1",
                 tokenizer: str | None = None, served_name: str | None = None, api: str = "completions",
                 server: str = "vllm", api_key_env: str = "OPENAI_API_KEY", timeout: float = 600.0,
                 retries: int = 5, backoff: float = 0.5, max_concurrency: int = 64, split_n: bool = False) -> None:
        if api not in ("completions", "chat"):
            raise ValueError(f"api must be 'completions' or 'chat', got '{api}'")
        if server not in ("vllm", "generic"):
            raise ValueError(f"server must be 'vllm' or 'generic', got '{server}'")
        self.model = model
        self.tokenizer_path = tokenizer or model
        self.served_name = served_name or model
        self.api, self.server = api, server
        self.split_n = split_n  # one n=1 request per sample (the shape its_hub and most clients send)
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.pool = EndpointPool(urls, os.environ.get(api_key_env), max_concurrency, timeout, retries, backoff)
        self._tokenizer: Any = None
        self._shape: ModelShape | None = None

    async def start(self) -> None:
        if self._tokenizer is None:
            await asyncio.to_thread(self._load)
        self.pool.open()  # the HTTP client's import and set-up belong to start, not the first request

    def _load(self) -> None:
        from transformers import AutoConfig, AutoTokenizer

        path, _ = resolve_model(self.tokenizer_path)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception as exc:
            raise BackendError(f"openai backend: cannot load tokenizer '{path}': {str(exc).splitlines()[0]}") from exc
        try:
            self._shape = ModelShape.from_hf_config(AutoConfig.from_pretrained(path))
        except Exception:
            log.warning("openai backend: no model config at '%s'; costs will be 0 FLOPs", path)
            self._shape = ModelShape(0, 0)

    async def close(self) -> None:
        await self.pool.close()

    @property
    def tokenizer(self) -> Any:
        return started(self._tokenizer, "openai")

    @property
    def shape(self) -> ModelShape:
        return started(self._shape, "openai")

    @property
    def capabilities(self) -> Capabilities:
        tokens = self.api == "completions"
        return Capabilities(token_prompts=tokens, streaming=True, scoring=tokens and self.server == "vllm",
                            lora=False, gradients=False)  # adapters a server was started with: `served_name`

    # -- payloads ----------------------------------------------------------------------------
    def _payload(self, prompt_ids: list[int], s: Sampling, stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model": s.extra.get("lora", self.served_name), "n": s.n,
                                "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
                                "stream": stream}
        if s.seed is not None:
            body["seed"] = s.seed
        if s.stop:
            body["stop"] = list(s.stop)
        if self.api == "chat":
            body.update(self._chat_messages(prompt_ids))
            if s.logprobs:
                body["logprobs"] = True
        else:
            body["prompt"] = list(prompt_ids)
            if s.logprobs:
                body["logprobs"] = 0
        if self.server == "vllm":
            body.update(top_k=s.top_k or -1, min_tokens=s.min_tokens, include_stop_str_in_output=s.include_stop_str_in_output,
                        return_token_ids=True)
            if s.stop_token_ids:
                body["stop_token_ids"] = list(s.stop_token_ids)
            if s.bad_words:
                body["bad_words"] = list(s.bad_words)
        body.update({k: v for k, v in s.extra.items() if k != "lora"})
        return body

    def _chat_messages(self, prompt_ids: list[int]) -> dict[str, Any]:
        """A chat API applies its own template, so it gets the messages the role rendered, never ids
        decoded back to text (that would template them twice). Ids a strategy built (a continuation,
        an edited prompt) have no messages: refused in one line."""
        messages = getattr(prompt_ids, "messages", None)
        if messages is None:
            raise BackendError("openai backend (api: chat): a chat API takes messages, and this prompt is "
                               "token ids not rendered from messages (prompt.chat: false, or a strategy that "
                               "continues a prompt); use api: completions")
        prefix = getattr(prompt_ids, "assistant_prefix", None)
        if not prefix:
            return {"messages": messages}
        if self.server != "vllm":
            raise BackendError("openai backend (api: chat, server: generic): an assistant prefix needs a vLLM "
                               "server (continue_final_message); use api: completions")
        return {"messages": [*messages, {"role": "assistant", "content": prefix}],
                "continue_final_message": True, "add_generation_prompt": False}

    def _choice(self, c: dict[str, Any], s: Sampling) -> Completion:
        text = c.get("text") if self.api == "completions" else (c.get("message") or {}).get("content", "")
        ids = c.get("token_ids") or self.tokenizer.encode(text or "", add_special_tokens=False)
        lps = None
        lp = c.get("logprobs")
        if lp:
            lps = lp.get("token_logprobs") if self.api == "completions" else [t["logprob"] for t in lp.get("content", [])]
        seed = None if s.seed is None else s.seed + c.get("index", 0)
        return Completion(list(ids), text or "", lps, c.get("finish_reason") or "length", seed)

    # -- requests ----------------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        await self.start()
        t0 = time.perf_counter()
        if self.split_n and sampling.n > 1:
            parts = await asyncio.gather(*(self._post(prompt_ids, _one_sample(sampling, k)) for k in range(sampling.n)))
        else:
            parts = [await self._post(prompt_ids, sampling)]
        completions = [c for gen in parts for c in gen.completions]
        return Generation(completions, prompt_tokens=sum(g.prompt_tokens for g in parts),
                          cached_prompt_tokens=sum(g.cached_prompt_tokens for g in parts),
                          seconds=time.perf_counter() - t0)

    async def _post(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        """One request; its choices in index order and the server's own prompt-token counts."""
        path = "/completions" if self.api == "completions" else "/chat/completions"
        data = await self.pool.post(path, self._payload(prompt_ids, sampling))
        choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
        usage = data.get("usage") or {}
        cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
        return Generation([self._choice(c, sampling) for c in choices],
                          prompt_tokens=usage.get("prompt_tokens", len(prompt_ids)), cached_prompt_tokens=cached)

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[StreamDelta]:
        await self.start()
        path = "/completions" if self.api == "completions" else "/chat/completions"
        events = self.pool.stream(path, self._payload(prompt_ids, sampling, stream=True))
        try:
            async for event in events:
                for c in event.get("choices", []):
                    text = c.get("text") if self.api == "completions" else (c.get("delta") or {}).get("content") or ""
                    lp = (c.get("logprobs") or {}).get("token_logprobs") if self.api == "completions" else None
                    yield StreamDelta(c.get("index", 0), list(c.get("token_ids") or []), text or "", lp,
                                      c.get("finish_reason"))
        finally:
            await events.aclose()  # closes the connection: the server aborts the request

    async def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> list[float]:
        """Prompt log-probs of the continuation rows (vLLM servers); costed as a full prefill."""
        self.capabilities.require(f"openai ({self.api}, {self.server})", scoring=True)
        if not prompt_ids:
            raise ValueError("score needs at least one prompt token before the continuation")
        if not continuation_ids:
            return []
        await self.start()
        body = {"model": self.served_name, "prompt": list(prompt_ids) + list(continuation_ids), "max_tokens": 1,
                "temperature": 0.0, "prompt_logprobs": 0}
        data = await self.pool.post("/completions", body)
        rows = data["choices"][0]["prompt_logprobs"][len(prompt_ids):]
        return [float(row[str(tok)]["logprob"]) for row, tok in zip(rows, continuation_ids)]


def _one_sample(s: Sampling, k: int) -> Sampling:
    """Sample k of n as its own n=1 request, seeded as the n-request's k-th choice would be."""
    return dataclasses.replace(s, n=1, seed=None if s.seed is None else s.seed + k)
