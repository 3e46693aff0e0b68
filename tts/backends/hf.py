"""`hf` backend: a transformers model served by a worker thread that batches the requests of all
concurrent problems into shared forward passes, with a per-row random stream for reproducibility.
The only backend that can pass gradients into the model (test-time learning uses it)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tts.backends.base import LOAD_LOCK, Backend, BackendError, brief, started
from tts.backends.models import resolve_model
from tts.cost.shape import ModelShape
from tts.progress import phase
from tts.types import Capabilities, Completion, Generation, RequestState, Sampling, StreamDelta

log = logging.getLogger(__name__)


class HFBackend(Backend):
    """Transformers model behind an in-process micro-batcher.

    `model` is a local folder, a hub id or `toy:NAME` (a packaged toy model) or a `.gguf` file; `gguf_file` loads a GGUF checkpoint; `device_map`
    (through accelerate) spreads a large model over devices. `max_batch_rows` caps the rows
    decoded together; `batch_wait_ms` is how long the worker waits for more requests to batch.
    """

    name = "hf"

    def __init__(self, model: str, tokenizer: str | None = None, dtype: str = "auto",
                 device: str = "cpu", device_map: str | dict | None = None,
                 gguf_file: str | None = None, max_batch_rows: int = 512,
                 batch_wait_ms: float = 2.0, trust_remote_code: bool = False,
                 attn_implementation: str | None = None) -> None:
        self.model_path, self.tokenizer_path = model, tokenizer
        self.dtype, self.device, self.device_map = dtype, device, device_map
        self.gguf_file, self.trust_remote_code = gguf_file, trust_remote_code
        self.attn_implementation = attn_implementation
        self.max_batch_rows, self.batch_wait = max_batch_rows, batch_wait_ms / 1000
        self._model: Any = None
        self._owner: Any = None
        self._tokenizer: Any = None
        self._decoder: Any = None
        self._shape: ModelShape | None = None
        self._eos: frozenset[int] = frozenset()
        self._pending: list[Any] = []
        self._inflight: list[Any] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_lock = asyncio.Lock()
        # held by the decode thread for each round, and by a lease (exclusive use of the model)
        self._model_lock = threading.Lock()
        self._lease_lock = asyncio.Lock()

    # -- loading -----------------------------------------------------------------------------
    async def start(self) -> None:
        async with self._start_lock:
            if self._model is None:
                await asyncio.to_thread(self._load_serialised)

    def _load_serialised(self) -> None:
        """transformers' loading (lazy imports, meta-device init) is not thread-safe: two hf roles
        starting together load one after the other."""
        with LOAD_LOCK:
            self.load()

    def load(self) -> None:
        """Load model and tokenizer (blocking); one clear error line when it fails."""
        if self._model is not None:
            return
        from tts.backends.hf_load import load_model

        self.model_path, self.gguf_file = resolve_model(self.model_path, self.gguf_file)
        t0 = time.perf_counter()
        loaded = load_model(self.model_path, self.tokenizer_path, self.gguf_file, self.dtype, self.device,
                            self.device_map, self.trust_remote_code, self.attn_implementation)
        self._tokenizer, self._owner, self._model = loaded.tokenizer, loaded.owner, loaded.model
        self._finish_load()
        gguf = f" (GGUF {self.gguf_file} de-quantised)" if self.gguf_file else ""
        phase(f"hf backend: {self.model_path}{gguf} loaded on {self.device_map or self.device}", t0)

    def _finish_load(self) -> None:
        from tts.backends.hf_decode import Decoder
        from tts.backends.hf_recurrent import RecurrentDecoder

        tok, model = self._tokenizer, self._model
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tok.eos_token_id is not None:
            eos_ids.add(tok.eos_token_id)
        self._eos = frozenset(eos_ids)
        pad = tok.pad_token_id if tok.pad_token_id is not None else (min(eos_ids) if eos_ids else 0)
        keeps = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._decoder = (RecurrentDecoder if getattr(model, "tts_recurrent", False) else Decoder)(model, tok, pad, keeps)
        params = sum(p.numel() for p in model.parameters())
        self._shape = ModelShape.from_hf_config(model.config, params=params)
        self._thread = threading.Thread(target=self._worker, name=f"tts-hf-{id(self):x}", daemon=True)
        self._thread.start()
        log.info("hf backend: loaded %s (%.1fM parameters)", self.model_path, params / 1e6)

    @property
    def model(self) -> Any:
        """The loaded `transformers` model (for methods that touch weights)."""
        self._require_loaded()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._require_loaded()
        return self._tokenizer

    @property
    def shape(self) -> ModelShape:
        self._require_loaded()
        assert self._shape is not None
        return self._shape

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(token_prompts=True, streaming=True, scoring=True, lora=False,
                            gradients=True, lease=True, request_state=True)

    @property
    def eos_ids(self) -> frozenset[int]:
        return started(self._eos, "hf")

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Any]:
        """Exclusive use of the loaded model for work that changes or trains on it per problem (tuning
        an initial state, encoding an adapter): batches already decoding finish first, queued
        requests wait until the lease ends, and leases are granted one at a time. Yields what the
        checkpoint loaded: the model, or the object holding it (a PERK checkpoint's wrapper)."""
        self._require_loaded()
        async with self._lease_lock:
            await asyncio.to_thread(self._model_lock.acquire)
            try:
                yield self._owner
            finally:
                self._model_lock.release()
                with self._cv:
                    self._cv.notify()

    def _require_loaded(self) -> None:
        if self._model is None:
            raise BackendError("hf backend: model not loaded yet (await backend.start())")

    def stats(self) -> dict[str, Any]:
        return vars(self._decoder.counters).copy() if self._decoder else {}

    async def close(self) -> None:
        """Abort queued and running requests, then stop the worker (a Ctrl-C never waits on a batch)."""
        with self._cv:
            self._closed = True
            for job in self._pending + self._inflight:
                job.aborted = True
            self._cv.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    # -- requests ----------------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        return await self.generate_with_state(prompt_ids, sampling, None)

    async def generate_with_state(self, prompt_ids: list[int], sampling: Sampling,
                                  state: RequestState | None) -> Generation:
        """`generate`, decoded alone under `state` (`request_state`; see RequestState)."""
        await self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        job = self._make_job(prompt_ids, sampling, lambda j: _resolve(loop, future, j), None)
        job.state = state
        self._submit(job)
        try:
            await future
        except asyncio.CancelledError:
            job.aborted = True
            raise
        return self._generation(job)

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[StreamDelta]:
        await self.start()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        job = self._make_job(prompt_ids, sampling,
                             lambda j: _deliver(loop, queue.put_nowait, j.error),  # None: the stream ended
                             lambda d: _deliver(loop, queue.put_nowait, d))
        self._submit(job)
        try:
            while (delta := await queue.get()) is not None:
                if isinstance(delta, BaseException):
                    raise delta  # a failed decode ends the stream with its error, not silently
                yield delta
        finally:
            job.aborted = True  # closing the iterator (or cancellation) aborts decoding

    async def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> list[float]:
        from tts.backends.hf_decode import ScoreJob

        if not prompt_ids:
            raise ValueError("score needs at least one prompt token before the continuation")
        if not continuation_ids:
            return []
        await self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._submit(ScoreJob(list(prompt_ids), list(continuation_ids),
                              lambda r: _deliver(loop, _settle, future, r)))
        return await future

    def _make_job(self, prompt_ids: list[int], sampling: Sampling, on_done: Any, on_delta: Any) -> Any:
        from tts.backends.hf_decode import GenJob
        from tts.backends.sampler import RowState, make_generator

        if not prompt_ids or not all(isinstance(t, int) for t in prompt_ids):
            raise ValueError("generate needs a non-empty list of int token ids (render it through the role)")
        early = sorted(self._eos | set(sampling.stop_token_ids))
        bad = self._bad_sequences(sampling.bad_words)
        rows = [RowState(sampling, make_generator(None if sampling.seed is None else sampling.seed + i),
                         early, bad, self._eos) for i in range(sampling.n)]
        return GenJob(list(prompt_ids), sampling, rows, on_done, on_delta)

    def _bad_sequences(self, words: tuple[str, ...]) -> list[list[int]]:
        seqs: list[list[int]] = []
        for word in words:
            for variant in {word, " " + word}:
                ids = self._tokenizer.encode(variant, add_special_tokens=False)
                if ids and ids not in seqs:
                    seqs.append(ids)
        return seqs

    def _generation(self, job: Any) -> Generation:
        comps = [Completion(list(r.out_ids), self._decoder.row_text(r), list(r.logprobs),
                            r.finish_reason, None if r.sampling.seed is None else r.sampling.seed + i)
                 for i, r in enumerate(job.rows)]
        learning = job.state.seconds if job.state is not None else 0.0  # a state's hooks report it apart
        return Generation(comps, prompt_tokens=len(job.prompt_ids), cached_prompt_tokens=0,
                          seconds=time.perf_counter() - job.started - learning,
                          info={"state_seconds": learning} if job.state is not None else {})

    def _submit(self, job: Any) -> None:
        with self._cv:
            if self._closed:
                raise BackendError("hf backend is closed")
            self._pending.append(job)
            self._cv.notify()

    # -- worker thread -----------------------------------------------------------------------
    def _worker(self) -> None:
        """The decode thread's main loop; it must never die, or every request would hang."""
        while not self._closed:
            try:
                self._worker_round()
            except Exception:
                log.exception("hf backend: worker round failed; continuing")

    def _worker_round(self) -> None:
        """Wait for work, serve pending scores, then decode a batch (which others may join)."""
        with self._cv:
            while not self._pending and not self._closed:
                self._cv.wait()
            if self._closed:
                return
        time.sleep(self.batch_wait)  # let concurrent requests join the first batch
        with self._model_lock:
            self._service_scores()
            for job in self._take_solo():
                self._run_solo(job)
            first = self._take_more(self.max_batch_rows, at_least_one=True)
            if first:
                self._run_generation(first)

    def _take_more(self, room: int, at_least_one: bool = False) -> list[Any]:
        """Hand pending generation requests that fit in `room` rows to the decode loop."""
        from tts.backends.hf_decode import GenJob

        with self._cv:
            if self._closed:
                return []
            if not at_least_one and any(_solo(j) for j in self._pending):
                return []  # a request with its own model state waits: let the running batch drain
            taken, rows = [], 0
            for job in self._pending:
                if not isinstance(job, GenJob) or _solo(job):  # scores and solo requests wait
                    continue
                if rows + len(job.rows) <= room or (at_least_one and not taken):
                    taken.append(job)
                    rows += len(job.rows)
            self._pending = [j for j in self._pending if j not in taken]
            live = [j for j in taken if not j.aborted]
            self._inflight += live
        for job in taken:
            if job.aborted:
                _abort(job)
                job.on_done(job)
        return live

    def _take_solo(self) -> list[Any]:
        """Pending requests with per-request model state (each decodes alone, between batches)."""
        with self._cv:
            solo = [j for j in self._pending if _solo(j)]
            self._pending = [j for j in self._pending if j not in solo]
        return solo

    def _run_solo(self, job: Any) -> None:
        with self._cv:
            self._inflight.append(job)
        try:
            if job.aborted:
                _abort(job)
            else:
                self._decoder.solo(job)
        except Exception as exc:  # fail this request, keep the worker alive
            log.exception("hf backend: decoding under a request state failed")
            job.error = BackendError(f"hf backend: decoding failed: {type(exc).__name__}: {brief(exc)}")
        finally:
            with self._cv:
                self._inflight.remove(job)
        job.on_done(job)

    def _service_scores(self) -> None:
        """Run every pending score request (called between decode steps and batches)."""
        from tts.backends.hf_decode import ScoreJob

        with self._cv:
            scores = [j for j in self._pending if isinstance(j, ScoreJob)]
            if not scores:
                return
            self._pending = [j for j in self._pending if not isinstance(j, ScoreJob)]
        self._run_scores(scores)

    def _run_generation(self, jobs: list[Any]) -> None:
        try:
            self._decoder.generate(jobs, take_more=self._take_more, between_steps=self._service_scores,
                                   max_rows=self.max_batch_rows)
        except Exception as exc:  # fail the requests, keep the worker alive
            log.exception("hf backend: decode batch failed")
            for job in self._inflight:
                if not all(r.finished for r in job.rows):
                    job.error = BackendError(f"hf backend: decoding failed: {type(exc).__name__}: {exc}")
                    job.on_done(job)
        finally:
            with self._cv:
                self._inflight = []

    def _run_scores(self, jobs: list[Any], max_tokens: int = 16384) -> None:
        chunk: list[Any] = []
        for job in jobs + [None]:
            size = sum(len(j.prompt) + len(j.continuation) for j in chunk)
            if chunk and (job is None or size + len(job.prompt) + len(job.continuation) > max_tokens):
                try:
                    for j, res in zip(chunk, self._decoder.score(chunk)):
                        j.on_done(res)
                except Exception as exc:
                    for j in chunk:
                        j.on_done(BackendError(f"hf backend: score failed: {exc}"))
                chunk = []
            if job is not None:
                chunk.append(job)


def _solo(job: Any) -> bool:
    """A generation request carrying per-request model state (decoded alone, between batches)."""
    return getattr(job, "state", None) is not None


def _abort(job: Any) -> None:
    for row in job.rows:
        row.finished, row.finish_reason = True, "abort"


def _deliver(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """Hand a result to the requester's event loop; a loop already closed has nobody waiting."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        log.debug("hf backend: result for a closed event loop dropped")


def _settle(future: asyncio.Future, result: Any) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future, job: Any) -> None:
    _deliver(loop, _settle, future, job.error if job.error is not None else job)
