"""Decoding for models with their own recurrent state (LaCT's fast weights, RWKV-7's WKV state),
marked `tts_recurrent = True`: padding would enter their state, so each request is prefilled alone,
its state copied per sample, and each row stepped with its own state. No continuous batching —
correct before fast; these are the test-time-learning models, small or on a GPU."""

from __future__ import annotations

import copy
from typing import Callable

import torch

from tts.backends.hf_decode import Decoder, GenJob, ScoreJob
from tts.backends.sampler import sample_next


class RecurrentDecoder(Decoder):
    @torch.inference_mode()
    def score(self, jobs: list[ScoreJob]) -> list[list[float]]:
        results = []
        for job in jobs:
            ids = torch.tensor([job.prompt + job.continuation], device=self.device)
            self.counters.score_passes += 1
            logits = self._forward(None, input_ids=ids).logits[0].float()
            c = len(job.continuation)
            rows = torch.log_softmax(logits[len(job.prompt) - 1: len(job.prompt) - 1 + c], dim=-1)
            results.append(rows.gather(1, torch.tensor(job.continuation, device=rows.device)[:, None])[:, 0].tolist())
        return results

    @torch.inference_mode()
    def generate(self, jobs: list[GenJob], take_more: Callable[[int], list[GenJob]] | None = None,
                 between_steps: Callable[[], None] | None = None, max_rows: int = 256) -> None:
        self.counters.decode_batches += 1
        queue = list(jobs)
        while queue:
            job = queue.pop(0)
            self._one(job)
            job.on_done(job)
            if between_steps is not None:
                between_steps()
            if not queue and take_more is not None:
                queue = take_more(max_rows)

    def _one(self, job: GenJob) -> None:
        self.counters.prefill_passes += 1
        # a `past_key_values` key (even None) asks the model for its state back (Decoder._forward)
        out = self._forward(1, input_ids=torch.tensor([job.prompt_ids], device=self.device), past_key_values=None)
        prefilled, first = out.past_key_values, out.logits[:, -1, :]
        for row in job.rows:
            state, logits = copy.deepcopy(prefilled), first
            while not row.finished:
                (token,), (lp,) = sample_next(logits, [row])
                self._advance(job, row, token, lp)
                if row.finished:
                    break
                out = self._forward(1, input_ids=torch.tensor([[token]], device=self.device), past_key_values=state)
                state, logits = out.past_key_values, out.logits[:, -1, :]
