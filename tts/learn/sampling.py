"""One next-token choice for the in-process decode loops of the learning methods (rerouting, PERK,
state tuning), which run outside the hf backend's batched sampler."""

from __future__ import annotations

import torch


def pick_token(logits: torch.Tensor, temperature: float, gen: torch.Generator | None) -> tuple[int, float]:
    """(token, its log-probability): greedy at temperature 0, else a draw from softmax(logits / T)."""
    logp = torch.log_softmax(logits, dim=-1)
    if temperature <= 0:
        token = int(torch.argmax(logp))
    else:
        probs = torch.softmax(logits / temperature, dim=-1).cpu()
        token = int(torch.multinomial(probs, 1, generator=gen))
    return token, float(logp[token])
