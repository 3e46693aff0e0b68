"""Per-row token sampling for the hf decode loop. Each row owns a `torch.Generator`, so its
samples depend only on its own seed and logits, never on what it was batched with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from tts.types import Sampling


@dataclass
class RowState:
    """One sequence being decoded: its settings, random stream and what it produced so far."""

    sampling: Sampling
    generator: torch.Generator
    banned_early: list[int]  # EOS and stop ids, banned until min_tokens is reached
    bad_sequences: list[list[int]]
    eos_ids: frozenset[int]
    out_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finished: bool = False
    finish_reason: str = "length"
    stop_at_char: int | None = None  # where the text is cut when a stop string matched


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded from `seed`, or from the OS when the call is unseeded."""
    g = torch.Generator(device="cpu")
    g.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
    return g


def _banned(rows: list[RowState]) -> tuple[list[int], list[int]]:
    """(row, token) pairs a row may not emit now: early EOS/stop ids and bad-word endings."""
    r_idx: list[int] = []
    t_idx: list[int] = []
    for r, row in enumerate(rows):
        if len(row.out_ids) < row.sampling.min_tokens:
            r_idx += [r] * len(row.banned_early)
            t_idx += row.banned_early
        for seq in row.bad_sequences:
            prefix = seq[:-1]
            if not prefix or row.out_ids[-len(prefix):] == prefix:
                r_idx.append(r)
                t_idx.append(seq[-1])
    return r_idx, t_idx


def _filter_top_k_top_p(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask (to -inf) logits outside each row's top-k and nucleus; keeps at least one token."""
    vocab = scaled.shape[-1]
    sorted_vals, sorted_idx = torch.sort(scaled, dim=-1, descending=True)
    ranks = torch.arange(vocab, device=scaled.device).unsqueeze(0)
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab)).unsqueeze(1)
    drop = ranks >= k
    probs = torch.softmax(sorted_vals.masked_fill(drop, float("-inf")), dim=-1)
    exclusive = torch.cumsum(probs, dim=-1) - probs
    drop |= exclusive >= top_p.unsqueeze(1)
    drop[:, 0] = False
    out = torch.full_like(scaled, float("-inf"))
    return out.scatter(1, sorted_idx, sorted_vals.masked_fill(drop, float("-inf")))


def sample_next(logits: torch.Tensor, rows: list[RowState]) -> tuple[list[int], list[float]]:
    """Choose one token per row; return the tokens and their raw (unprocessed) log-probabilities.

    Runs on the logits' device; only each row's uniform draw comes from its CPU generator."""
    device = logits.device
    logits = logits.float()
    vocab = logits.shape[-1]
    raw_logprobs = torch.log_softmax(logits, dim=-1)
    r_idx, t_idx = _banned(rows)
    work = logits
    if r_idx:
        keep = [i for i, t in enumerate(t_idx) if 0 <= t < vocab]
        work = logits.clone()
        work[torch.tensor([r_idx[i] for i in keep], device=device),
             torch.tensor([t_idx[i] for i in keep], device=device)] = float("-inf")
    temps = torch.tensor([row.sampling.temperature for row in rows], device=device)
    greedy = temps <= 1e-6
    scaled = work / torch.where(greedy, torch.ones_like(temps), temps).unsqueeze(1)
    top_k = [row.sampling.top_k for row in rows]
    top_p = [row.sampling.top_p for row in rows]
    if any(k > 0 for k in top_k) or any(p < 1 for p in top_p):
        scaled = _filter_top_k_top_p(scaled, torch.tensor(top_k, device=device), torch.tensor(top_p, device=device))
    probs = torch.softmax(scaled, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    u = torch.cat([torch.rand(1, generator=row.generator) for row in rows]).to(device)
    sampled = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
    sampled = sampled.clamp_(max=vocab - 1)
    chosen = torch.where(greedy, torch.argmax(work, dim=-1), sampled)
    lp = raw_logprobs.gather(1, chosen.unsqueeze(1)).squeeze(1)
    return chosen.tolist(), lp.tolist()
