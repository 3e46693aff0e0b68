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


def _ban_mask(rows: list[RowState], vocab: int) -> torch.Tensor | None:
    """Boolean (B, V) mask of tokens a row may not emit now, or None when nothing is banned."""
    mask: torch.Tensor | None = None
    for r, row in enumerate(rows):
        banned: list[int] = []
        if len(row.out_ids) < row.sampling.min_tokens:
            banned.extend(row.banned_early)
        for seq in row.bad_sequences:
            prefix = seq[:-1]
            if not prefix or row.out_ids[-len(prefix):] == prefix:
                banned.append(seq[-1])
        if banned:
            if mask is None:
                mask = torch.zeros(len(rows), vocab, dtype=torch.bool)
            mask[r, [t for t in banned if 0 <= t < vocab]] = True
    return mask


def _filter_top_k_top_p(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask (to -inf) logits outside each row's top-k and nucleus; keeps at least one token."""
    vocab = scaled.shape[-1]
    sorted_vals, sorted_idx = torch.sort(scaled, dim=-1, descending=True)
    ranks = torch.arange(vocab).unsqueeze(0)
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab)).unsqueeze(1)
    drop = ranks >= k
    probs = torch.softmax(sorted_vals.masked_fill(drop, float("-inf")), dim=-1)
    exclusive = torch.cumsum(probs, dim=-1) - probs
    drop |= exclusive >= top_p.unsqueeze(1)
    drop[:, 0] = False
    out = torch.full_like(scaled, float("-inf"))
    return out.scatter(1, sorted_idx, sorted_vals.masked_fill(drop, float("-inf")))


def sample_next(logits: torch.Tensor, rows: list[RowState]) -> tuple[list[int], list[float]]:
    """Choose one token per row; return the tokens and their raw (unprocessed) log-probabilities."""
    logits = logits.float().cpu()
    raw_logprobs = torch.log_softmax(logits, dim=-1)
    ban = _ban_mask(rows, logits.shape[-1])
    work = logits if ban is None else logits.masked_fill(ban, float("-inf"))
    temps = torch.tensor([row.sampling.temperature for row in rows])
    greedy = temps <= 1e-6
    scaled = work / torch.where(greedy, torch.ones_like(temps), temps).unsqueeze(1)
    top_k = torch.tensor([row.sampling.top_k for row in rows])
    top_p = torch.tensor([row.sampling.top_p for row in rows])
    if bool(((top_k > 0) | (top_p < 1)).any()):
        scaled = _filter_top_k_top_p(scaled, top_k, top_p)
    probs = torch.softmax(scaled, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    u = torch.cat([torch.rand(1, generator=row.generator) for row in rows])
    sampled = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
    sampled = sampled.clamp_(max=logits.shape[-1] - 1)
    chosen = torch.where(greedy, torch.argmax(work, dim=-1), sampled)
    lp = raw_logprobs.gather(1, chosen.unsqueeze(1)).squeeze(1)
    return chosen.tolist(), lp.tolist()
