"""A pool of OpenAI-compatible endpoints: least-outstanding-requests balancing, a concurrency cap
per endpoint, timeouts, and retries with exponential backoff and jitter on 429, 5xx and connection
errors. One endpoint per vLLM server (per node or GPU) is how a run scales past one machine."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tts.backends.base import BackendError

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


@dataclass
class Endpoint:
    url: str
    cap: int
    outstanding: int = 0
    failures: int = 0
    down_until: float = 0.0
    sem: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.sem = asyncio.Semaphore(self.cap)


class RetryableError(Exception):
    """A failure worth another try (on this or another endpoint)."""


class EndpointPool:
    """POST JSON to the least busy healthy endpoint, retrying transient failures elsewhere."""

    def __init__(self, urls: list[str], api_key: str | None = None, max_concurrency: int = 64,
                 timeout: float = 600.0, retries: int = 5, backoff: float = 0.5, max_backoff: float = 20.0,
                 transport: Any = None) -> None:
        if not urls:
            raise ValueError("openai backend needs at least one base_url")
        self.endpoints = [Endpoint(u, max_concurrency) for u in urls]
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.timeout, self.api_key, self.transport = timeout, api_key, transport
        self._client: Any = None
        self.rng = random.Random()

    @property
    def client(self) -> Any:
        import httpx

        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=10.0), headers=headers,
                                             limits=httpx.Limits(max_connections=None), transport=self.transport)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def pick(self) -> Endpoint:
        """The healthy endpoint with the fewest requests in flight (ties at random)."""
        now = time.monotonic()
        healthy = [e for e in self.endpoints if e.down_until <= now] or self.endpoints
        low = min(e.outstanding for e in healthy)
        return self.rng.choice([e for e in healthy if e.outstanding == low])

    def _delay(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** attempt)
        return base + self.rng.uniform(0, self.backoff)

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One JSON request with retries; raises BackendError once every try failed."""
        last = ""
        for attempt in range(self.retries + 1):
            ep = self.pick()
            try:
                async with ep.sem:
                    ep.outstanding += 1
                    try:
                        return await self._post_once(ep, path, payload)
                    finally:
                        ep.outstanding -= 1
            except RetryableError as exc:
                last = str(exc)
                self._mark_down(ep)
                if attempt < self.retries:
                    await asyncio.sleep(self._delay(attempt))
        raise BackendError(f"openai backend: {path} failed after {self.retries + 1} tries: {last}")

    async def _post_once(self, ep: Endpoint, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            resp = await self.client.post(ep.url + path, json=payload)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise RetryableError(f"{ep.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code in RETRY_STATUS:
            raise RetryableError(f"{ep.url}: HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise BackendError(f"openai backend: {ep.url}{path}: HTTP {resp.status_code}: {resp.text[:300]}")
        ep.failures = 0
        return resp.json()

    def _mark_down(self, ep: Endpoint) -> None:
        ep.failures += 1
        ep.down_until = time.monotonic() + min(30.0, self.backoff * 2 ** ep.failures)
        log.warning("endpoint %s failed (%d in a row)", ep.url, ep.failures)

    async def stream(self, path: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Server-sent events as dicts; retried only until the first event arrives. Closing the
        iterator closes the connection, which makes a vLLM server abort the request."""
        import httpx

        for attempt in range(self.retries + 1):
            ep = self.pick()
            started = False
            try:
                async with ep.sem:
                    ep.outstanding += 1
                    try:
                        async with self.client.stream("POST", ep.url + path, json=payload) as resp:
                            if resp.status_code in RETRY_STATUS:
                                raise RetryableError(f"{ep.url}: HTTP {resp.status_code}")
                            if resp.status_code >= 400:
                                body = (await resp.aread()).decode()[:300]
                                raise BackendError(f"openai backend: {ep.url}{path}: HTTP {resp.status_code}: {body}")
                            async for line in resp.aiter_lines():
                                if line.startswith("data: ") and line[6:].strip() != "[DONE]":
                                    started = True
                                    yield json.loads(line[6:])
                            return
                    finally:
                        ep.outstanding -= 1
            except (RetryableError, httpx.TransportError) as exc:
                if started:
                    raise BackendError(f"openai backend: stream broke after it started: {exc}") from exc
                self._mark_down(ep)
                if attempt == self.retries:
                    raise BackendError(f"openai backend: {path} stream failed after {attempt + 1} tries: {exc}") from exc
                await asyncio.sleep(self._delay(attempt))
