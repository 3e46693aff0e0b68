"""The hf backend's batched decode and scoring passes. Prompts of many requests are left-padded
into one batch, prefilled once per request and expanded to its n rows; rows leave the batch as
they finish (the KV cache is compacted) and requests that arrive meanwhile join it between steps
(continuous batching), so no request waits for an unrelated long one."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from tts.backends import kv
from tts.backends.sampler import RowState, sample_next
from tts.types import RequestState, Sampling, StreamDelta


@dataclass(eq=False)
class GenJob:
    """One `generate`/`stream` request waiting for or inside a decode batch."""

    prompt_ids: list[int]
    sampling: Sampling
    rows: list[RowState]
    on_done: Callable[["GenJob"], None]
    on_delta: Callable[[StreamDelta], None] | None = None
    state: RequestState | None = None  # per-request model state: decoded alone (Decoder.solo)
    aborted: bool = False
    error: Exception | None = None  # set when the decode batch failed: generate raises it, a stream too
    started: float = field(default_factory=time.perf_counter)
    emitted_chars: list[int] = field(default_factory=list)
    decode_offsets: list[tuple[int, int]] = field(default_factory=list)  # per row: (window start, read up to)


@dataclass(eq=False)
class ScoreJob:
    """One `score` request: log-probs of `continuation` given `prompt`."""

    prompt: list[int]
    continuation: list[int]
    on_done: Callable[[list[float] | BaseException], None]


@dataclass
class Counters:
    """What the engine did, for tests and diagnostics."""

    forward_passes: int = 0
    prefill_passes: int = 0
    score_passes: int = 0
    decode_batches: int = 0
    max_batch_rows: int = 0
    tokens_generated: int = 0


def left_pad(seqs: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, ...]:
    """Left-padded ids, attention mask and position ids for a batch of sequences."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, seq in enumerate(seqs):
        if seq:
            ids[r, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[r, width - len(seq):] = 1
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


class Decoder:
    """Runs decode and score batches on one loaded model (called from the backend's worker)."""

    def __init__(self, model: Any, tokenizer: Any, pad_id: int, keeps_logits: bool) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.keeps_logits = keeps_logits
        self.device = getattr(model, "device", torch.device("cpu"))
        self.counters = Counters()

    def _forward(self, keep: int | None = None, via: RequestState | None = None, **inputs: Any) -> Any:
        if self.keeps_logits and keep is not None:
            inputs["logits_to_keep"] = keep
        self.counters.forward_passes += 1
        inputs["use_cache"] = "past_key_values" in inputs
        return via.forward(self.model, inputs) if via is not None else self.model(**inputs)

    @torch.inference_mode()
    def score(self, jobs: list[ScoreJob]) -> list[list[float]]:
        """Continuation log-probs for each job in one padded prefill."""
        ids, mask, pos = left_pad([j.prompt + j.continuation for j in jobs], self.pad_id, self.device)
        keep = max(len(j.continuation) for j in jobs) + 1
        self.counters.score_passes += 1
        logits = self._forward(keep, input_ids=ids, attention_mask=mask, position_ids=pos).logits
        logits = logits[:, -keep:, :].float()
        results = []
        for r, job in enumerate(jobs):
            c = len(job.continuation)
            rows = torch.log_softmax(logits[r, keep - 1 - c: keep - 1, :], dim=-1)
            target = torch.tensor(job.continuation, device=rows.device).unsqueeze(1)
            results.append(rows.gather(1, target).squeeze(1).tolist())
        return results

    def _prefill(self, jobs: list[GenJob]) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, list]:
        """Prefill each job's prompt once, then expand the cache to one row per sample."""
        from transformers import DynamicCache

        ids, mask, pos = left_pad([j.prompt_ids for j in jobs], self.pad_id, self.device)
        cache = DynamicCache()
        self.counters.prefill_passes += 1
        out = self._forward(1, input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache)
        expand = [j for j, job in enumerate(jobs) for _ in job.rows]
        cache.batch_select_indices(torch.tensor(expand, device=self.device))
        live = [(job, row) for job in jobs for row in job.rows]
        return cache, mask[expand], pos[expand, -1:] + 1, out.logits[expand, -1, :], live

    @torch.inference_mode()
    def generate(self, jobs: list[GenJob], take_more: Callable[[int], list[GenJob]] | None = None,
                 between_steps: Callable[[], None] | None = None, max_rows: int = 256) -> None:
        """Decode every row to completion, calling each job's `on_done` as soon as it finishes.

        `take_more(room)` hands over requests that arrived meanwhile; they join the running batch
        (continuous batching) when the cache allows it. `between_steps` runs pending score calls."""
        self.counters.decode_batches += 1
        cache, mask, next_pos, logits, live = self._prefill(jobs)
        pending = {id(job): len(job.rows) for job in jobs}
        while live:
            self.counters.max_batch_rows = max(self.counters.max_batch_rows, len(live))
            tokens, lps = sample_next(logits, [row for _, row in live])
            for (job, row), tok, lp in zip(live, tokens, lps):
                self._advance(job, row, tok, lp)
            self._finish_jobs(live, pending)
            keep = [i for i, (_, row) in enumerate(live) if not row.finished]
            if len(keep) < len(live) and keep:
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, next_pos = kv.trim(cache, mask[index]), next_pos[index]
            live, tokens = [live[i] for i in keep], [tokens[i] for i in keep]
            if live:
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                step_ids = torch.tensor([[t] for t in tokens], device=self.device)
                logits = self._forward(1, input_ids=step_ids, attention_mask=mask, position_ids=next_pos,
                                       past_key_values=cache).logits[:, -1, :]
                next_pos = next_pos + 1
            if between_steps is not None:
                between_steps()
            joining = take_more(max_rows - len(live)) if take_more and (not live or kv.can_merge(cache)) else []
            if joining:
                n_cache, n_mask, n_pos, n_logits, n_live = self._prefill(joining)
                pending.update({id(job): len(job.rows) for job in joining})
                if live:
                    mask = kv.merge(cache, mask, n_cache, n_mask)
                    next_pos, logits = torch.cat([next_pos, n_pos]), torch.cat([logits, n_logits])
                else:
                    cache, mask, next_pos, logits = n_cache, n_mask, n_pos, n_logits
                live = live + n_live

    @torch.no_grad()  # not inference_mode: a RequestState hook may turn gradients on to learn
    def solo(self, job: GenJob) -> None:
        """Decode one request alone, row by row, under its `RequestState` (plain decoding when it has
        none): how recurrent models decode, and how per-request model state is applied without
        touching any other request. Rows share one prefill unless the state changes the model per row."""
        state = job.state or RequestState()
        prompt = job.prompt_ids
        if not state.shared_prefill:
            for i, row in enumerate(job.rows):
                state.begin_row(self.model, prompt, i)
                try:
                    self._solo_row(job, i, state, *self._solo_prefill(state, prompt))
                finally:
                    state.end_row(self.model, i)
            return
        state.begin_row(self.model, prompt, 0)
        try:
            cache, logits = self._solo_prefill(state, prompt)
            for i in range(len(job.rows)):
                last = i == len(job.rows) - 1  # earlier rows decode from a copy of the prefilled cache
                self._solo_row(job, i, state, cache if last else copy.deepcopy(cache), logits)
        finally:
            state.end_row(self.model, 0)

    def _solo_prefill(self, state: RequestState, ids: list[int]) -> tuple[Any, torch.Tensor]:
        self.counters.prefill_passes += 1
        out = self._forward(1, state, input_ids=torch.tensor([ids], device=self.device),
                            past_key_values=state.initial_cache(self.model))
        return out.past_key_values, out.logits[:, -1, :]

    def _solo_row(self, job: GenJob, index: int, state: RequestState, cache: Any, logits: torch.Tensor) -> None:
        row = job.rows[index]
        while not row.finished:
            (token,), (lp,) = sample_next(logits, [row])
            self._advance(job, row, token, lp)
            if row.finished:
                break
            if state.after_token(self.model, job.prompt_ids + row.out_ids, index):
                cache, logits = self._solo_prefill(state, job.prompt_ids + row.out_ids)
                continue
            out = self._forward(1, state, input_ids=torch.tensor([[token]], device=self.device), past_key_values=cache)
            cache, logits = out.past_key_values, out.logits[:, -1, :]

    @staticmethod
    def _finish_jobs(live: list, pending: dict[int, int]) -> None:
        for job, row in live:
            if row.finished and id(job) in pending:
                pending[id(job)] -= 1
                if pending[id(job)] == 0:
                    del pending[id(job)]
                    job.on_done(job)

    def _advance(self, job: GenJob, row: RowState, token: int, logprob: float) -> None:
        """Append a token to a row and decide whether the row is finished."""
        if job.aborted:
            row.finished, row.finish_reason = True, "abort"
            return
        self.counters.tokens_generated += 1
        row.out_ids.append(token)
        row.logprobs.append(logprob)
        sampling = row.sampling
        if token in row.eos_ids or token in sampling.stop_token_ids:
            row.finished, row.finish_reason = True, "stop"
        elif sampling.stop and self._hit_stop_string(row):
            row.finished, row.finish_reason = True, "stop"
        elif len(row.out_ids) >= sampling.max_tokens:
            row.finished, row.finish_reason = True, "length"
        if job.on_delta is not None:
            self._emit(job, row)

    def _hit_stop_string(self, row: RowState) -> bool:
        """Check the decoded tail for a stop string; remember where the text must be cut."""
        width = max(len(s) for s in row.sampling.stop) + 4
        tail = self.tokenizer.decode(row.out_ids[-width:], skip_special_tokens=True)
        if not any(s in tail for s in row.sampling.stop):
            return False
        text = self.tokenizer.decode(row.out_ids, skip_special_tokens=True)
        hits = [(text.find(s), s) for s in row.sampling.stop if s in text]
        at, stop = min(hits)
        row.stop_at_char = at + (len(stop) if row.sampling.include_stop_str_in_output else 0)
        return True

    def row_text(self, row: RowState) -> str:
        """Final text of a row, cut at its stop string or stop token as vLLM does."""
        ids = row.out_ids
        if (row.finish_reason == "stop" and ids and ids[-1] in row.sampling.stop_token_ids
                and not row.sampling.include_stop_str_in_output):
            ids = ids[:-1]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text if row.stop_at_char is None else text[: row.stop_at_char]

    def _emit(self, job: GenJob, row: RowState) -> None:
        """Send the newest token of a streamed row as a delta. Text is decoded incrementally (a window
        from the last stable point, as TGI and vLLM do), so a long stream costs linear, not
        quadratic, detokenisation; the finished row's text is decoded once and what is missing sent."""
        index = job.rows.index(row)
        if not job.emitted_chars:
            job.emitted_chars = [0] * len(job.rows)
            job.decode_offsets = [(0, 0)] * len(job.rows)
        if row.finished:
            delta = self.row_text(row)[job.emitted_chars[index]:]
        else:
            delta = self._next_text(job, index, row.out_ids)
        job.emitted_chars[index] += len(delta)
        job.on_delta(StreamDelta(index, row.out_ids[-1:], delta, row.logprobs[-1:],
                                 row.finish_reason if row.finished else None))

    def _next_text(self, job: GenJob, index: int, ids: list[int]) -> str:
        """New text since the last stable point; held back while it ends in an incomplete character."""
        prefix, read = job.decode_offsets[index]
        before = self.tokenizer.decode(ids[prefix:read], skip_special_tokens=True)
        now = self.tokenizer.decode(ids[prefix:], skip_special_tokens=True)
        if len(now) <= len(before) or now.endswith("\ufffd"):
            return ""
        job.decode_offsets[index] = (read, len(ids))
        return now[len(before):]
