"""Decoding for models with their own recurrent state (LaCT's fast weights, RWKV-7's WKV state),
marked `tts_recurrent = True`: padding would enter their state, so each request is prefilled alone,
its state copied per sample, and each row stepped with its own state. No continuous batching —
correct before fast; these are the test-time-learning models, small or on a GPU."""

from __future__ import annotations

from typing import Callable

import torch

from tts.backends.hf_decode import Decoder, GenJob, ScoreJob


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

    def generate(self, jobs: list[GenJob], take_more: Callable[[int], list[GenJob]] | None = None,
                 between_steps: Callable[[], None] | None = None, max_rows: int = 256) -> None:
        self.counters.decode_batches += 1
        queue = list(jobs)
        while queue:
            job = queue.pop(0)
            self.solo(job)  # prefilled once, the state copied per row
            job.on_done(job)
            if between_steps is not None:
                between_steps()
            if not queue and take_more is not None:
                queue = take_more(max_rows)
