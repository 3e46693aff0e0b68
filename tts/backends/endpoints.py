"""A pool of OpenAI-compatible endpoints: least-outstanding-requests balancing, a concurrency cap
per endpoint, timeouts, and retries with exponential backoff and jitter on 429, 5xx and connection
errors. One endpoint per vLLM server (per node or GPU) is how a run scales past one machine.

The HTTP client is aiohttp: with hundreds of one-sample requests in flight (`split_n`), httpx's
connection pool cost ~6x the throughput on a toy vLLM server (benchmarks/vs_its_hub.py)."""

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


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a dropped, refused or timed-out connection raises (worth another try)."""
    import aiohttp

    return (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


class EndpointPool:
    """POST JSON to the least busy healthy endpoint, retrying transient failures elsewhere."""

    def __init__(self, urls: list[str], api_key: str | None = None, max_concurrency: int = 64,
                 timeout: float = 600.0, retries: int = 5, backoff: float = 0.5, max_backoff: float = 20.0) -> None:
        if not urls:
            raise ValueError("openai backend needs at least one base_url")
        self.endpoints = [Endpoint(u, max_concurrency) for u in urls]
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.timeout, self.api_key = timeout, api_key
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rng = random.Random()

    @property
    def session(self) -> Any:
        """One aiohttp session per event loop (a session cannot outlive the loop it was made on);
        no connection cap of its own, since each endpoint's semaphore is the cap."""
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            # a cap on each wait for bytes, not on the whole request: a long generation that keeps
            # streaming (or a slow one under load) must not be cut off at `timeout` in total
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self.timeout)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout, read_bufsize=2**20,
                                                  headers=headers)
            self._loop = loop
        return self._session

    def open(self) -> None:
        """Make this loop's session now (call from inside the loop that will use it)."""
        _ = self.session

    async def close(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._loop = None

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
        try:
            async with self.session.post(ep.url + path, json=payload) as resp:
                await self._check(resp, ep, path)
                data = await resp.read()
        except _transport_errors() as exc:
            raise RetryableError(f"{ep.url}: {type(exc).__name__}: {exc}") from exc
        ep.failures = 0
        return json.loads(data)

    @staticmethod
    async def _check(resp: Any, ep: Endpoint, path: str) -> None:
        """Raise for an HTTP error: retryable for overload and server faults, final otherwise."""
        if resp.status < 400:
            return
        body = (await resp.read()).decode(errors="replace")
        if resp.status in RETRY_STATUS:
            raise RetryableError(f"{ep.url}: HTTP {resp.status}: {body[:200]}")
        raise BackendError(f"openai backend: {ep.url}{path}: HTTP {resp.status}: {body[:300]}")

    def _mark_down(self, ep: Endpoint) -> None:
        ep.failures += 1
        ep.down_until = time.monotonic() + min(30.0, self.backoff * 2 ** ep.failures)
        log.warning("endpoint %s failed (%d in a row)", ep.url, ep.failures)

    async def stream(self, path: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Server-sent events as dicts; retried only until the first event arrives. Closing the
        iterator closes the connection, which makes a vLLM server abort the request."""
        for attempt in range(self.retries + 1):
            ep = self.pick()
            started = False
            try:
                async with ep.sem:
                    ep.outstanding += 1
                    try:
                        async for event in self._events(ep, path, payload):
                            started = True
                            yield event
                        return
                    finally:
                        ep.outstanding -= 1
            except (RetryableError, *_transport_errors()) as exc:
                if started:
                    raise BackendError(f"openai backend: stream broke after it started: {exc}") from exc
                self._mark_down(ep)
                if attempt == self.retries:
                    raise BackendError(f"openai backend: {path} stream failed after {attempt + 1} tries: {exc}") from exc
                await asyncio.sleep(self._delay(attempt))

    async def _events(self, ep: Endpoint, path: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The `data:` events of one streamed response; the connection is closed, not pooled, when
        the consumer stops early."""
        resp = await self.session.post(ep.url + path, json=payload)
        done = False
        try:
            await self._check(resp, ep, path)
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data: ") and line[6:].strip() != "[DONE]":
                    yield json.loads(line[6:])
            done = True
        finally:
            if done:
                resp.release()
            else:
                resp.close()
