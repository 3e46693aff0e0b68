"""KV-cache surgery for continuous batching in the hf backend: merging the cache of newly
prefilled rows into a running batch (left-padding the shorter one with masked zeros) and trimming
columns no live row attends to. Only plain `DynamicLayer` caches are touched; for any other cache
type `can_merge` says no and the backend batches at request boundaries instead."""

from __future__ import annotations

from typing import Any

import torch


def can_merge(cache: Any) -> bool:
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    if width == 0:
        return t
    pad = torch.zeros(*t.shape[:-2], width, t.shape[-1], dtype=t.dtype, device=t.device)
    return torch.cat([pad, t], dim=-2)


def merge(cache: Any, mask: torch.Tensor, new_cache: Any, new_mask: torch.Tensor) -> torch.Tensor:
    """Append `new_cache`'s rows to `cache` in place; returns the merged attention mask."""
    old_len, new_len = mask.shape[1], new_mask.shape[1]
    width = max(old_len, new_len)
    for layer, new in zip(cache.layers, new_cache.layers):
        layer.keys = torch.cat([_left_pad(layer.keys, width - old_len), _left_pad(new.keys, width - new_len)])
        layer.values = torch.cat([_left_pad(layer.values, width - old_len), _left_pad(new.values, width - new_len)])
    zeros = lambda m, w: torch.cat([torch.zeros_like(m[:, :1]).expand(m.shape[0], w), m], dim=1)  # noqa: E731
    return torch.cat([zeros(mask, width - old_len), zeros(new_mask, width - new_len)])


def trim(cache: Any, mask: torch.Tensor) -> torch.Tensor:
    """Drop leading cache columns that every live row masks out (left over from finished rows)."""
    used = mask.any(dim=0).nonzero()
    start = int(used[0]) if len(used) else 0
    if start == 0:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, start:, :]
        layer.values = layer.values[:, :, start:, :]
    return mask[:, start:]
