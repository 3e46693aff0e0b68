"""Additive router offsets for Mixture-of-Experts models (spec: moe-rerouting.md).

In the installed transformers (5.x) OLMoE, Qwen2-MoE and Mixtral route through a `<Model>TopKRouter`
(`weight` [E, hidden], `top_k`, `norm_topk_prob`; Mixtral always renormalises) that returns
(logits, top-k weights, top-k indices) — an output hook would be too late, so `RouterBias`
replaces the router's forward with one that adds δ to the logits *before* softmax and top-k, and
reproduces the rest exactly (δ = 0 is bit-identical; `remove()` restores the original forward).
δ is float32, one vector per selected layer, or one per sequence (`batch` rows) broadcast over
that sequence's tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MoEBlock:
    layer: int
    block: nn.Module
    router: nn.Module
    num_experts: int
    top_k: int
    renorm: bool


def moe_blocks(model: nn.Module) -> list[MoEBlock]:
    """Every sparse MoE block (a module with `gate` and `experts` children whose gate is a top-k
    router), with its decoder-layer index. Shared-expert gates and dense layers are not routers."""
    layers = _decoder_layers(model)
    out = []
    for index, layer in enumerate(layers):
        for name in ("mlp", "block_sparse_moe"):
            block = getattr(layer, name, None)
            gate = getattr(block, "gate", None)
            if block is not None and hasattr(block, "experts") and hasattr(gate, "weight") and hasattr(gate, "top_k"):
                renorm = bool(getattr(gate, "norm_topk_prob", True))  # Mixtral's router always renormalises
                out.append(MoEBlock(index, block, gate, int(gate.weight.shape[0]), int(gate.top_k), renorm))
                break
    return out


def _decoder_layers(model: nn.Module) -> list[nn.Module]:
    for path in ("model.layers", "layers", "transformer.h"):
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            return list(obj)
    raise ValueError(f"{type(model).__name__}: cannot find its decoder layers")


def route(router: nn.Module, hidden: torch.Tensor, delta: torch.Tensor | None, renorm: bool,
          cast_back: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The router's computation with δ added to the logits before softmax and top-k."""
    hidden = hidden.reshape(-1, router.weight.shape[1])
    logits = F.linear(hidden, router.weight)
    if delta is not None:
        if delta.dim() == 2:  # per sequence: rows are sequence-major (B·T)
            delta = delta.repeat_interleave(logits.shape[0] // delta.shape[0], dim=0)
        logits = logits + delta.to(logits.dtype)
    # float32 as the routers do (float64 kept, for gradient checks)
    probs = F.softmax(logits, dtype=torch.promote_types(logits.dtype, torch.float32), dim=-1)
    top, index = torch.topk(probs, router.top_k, dim=-1)
    if renorm:
        top = top / top.sum(dim=-1, keepdim=True)
    if cast_back:
        top = top.to(logits.dtype)
    return logits, top, index


class RouterBias(nn.Module):
    """δ for the selected MoE layers, installed into the routers' forward until `remove()`."""

    def __init__(self, model: nn.Module, layers: list[int] | None = None, batch: int | None = None) -> None:
        super().__init__()
        blocks = moe_blocks(model)
        if not blocks:
            raise ValueError(f"{type(model).__name__} has no MoE router this patch knows")
        known = {b.layer: b for b in blocks}
        chosen = layers if layers is not None else sorted(known)
        unknown = [i for i in chosen if i not in known]
        if unknown:
            raise ValueError(f"layer {unknown[0]} has no MoE router (MoE layers: {sorted(known)})")
        self.blocks = [known[i] for i in chosen]
        shape = lambda b: (batch, b.num_experts) if batch else (b.num_experts,)  # noqa: E731
        self.delta = nn.ParameterDict({str(b.layer): nn.Parameter(torch.zeros(shape(b), dtype=torch.float32))
                                       for b in self.blocks})
        self._saved: dict[int, Any] = {}

    @property
    def layers(self) -> list[int]:
        return [b.layer for b in self.blocks]

    def install(self) -> "RouterBias":
        """Route the selected layers through `route` with this δ (idempotent)."""
        for b in self.blocks:
            if b.layer in self._saved:
                continue
            cast_back = hasattr(b.router, "norm_topk_prob")  # OLMoE/Qwen2-MoE cast top-k weights back
            self._saved[b.layer] = vars(b.router).get("forward")  # None: the class's own forward
            param = self.delta[str(b.layer)]
            b.router.forward = (lambda h, r=b.router, d=param, n=b.renorm, c=cast_back: route(r, h, d, n, c))
        return self

    def remove(self) -> None:
        """Restore every patched router exactly as it was."""
        for b in self.blocks:
            if b.layer not in self._saved:
                continue
            previous = self._saved.pop(b.layer)
            if previous is None:
                del vars(b.router)["forward"]
            else:
                b.router.forward = previous

    def zero_(self) -> None:
        with torch.no_grad():
            for p in self.delta.values():
                p.zero_()

    def __enter__(self) -> "RouterBias":
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def layer_confidence(model: nn.Module, input_ids: torch.Tensor, metric: str = "topk_mass") -> dict[int, float]:
    """Per MoE layer, the routers' confidence on these tokens: mean top-k probability mass
    (`topk_mass`) or minus the mean routing entropy (`neg_entropy`). One no-grad forward."""
    if metric not in ("topk_mass", "neg_entropy"):
        raise ValueError(f"layer_metric must be topk_mass or neg_entropy, got '{metric}'")
    found: dict[int, float] = {}
    hooks = []
    for b in moe_blocks(model):
        def hook(module: nn.Module, args: Any, output: Any, layer: int = b.layer, k: int = b.top_k) -> None:
            probs = F.softmax(output[0].float(), dim=-1)
            if metric == "topk_mass":
                found[layer] = probs.topk(k, dim=-1).values.sum(-1).mean().item()
            else:
                found[layer] = (probs * probs.clamp_min(1e-12).log()).sum(-1).mean().item()
        hooks.append(b.router.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(input_ids=input_ids)
    finally:
        for h in hooks:
            h.remove()
    return found
