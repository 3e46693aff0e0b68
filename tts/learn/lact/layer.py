"""The LaCT layer (spec lact.md, §Algorithm): one q/k/v projection shared by a sliding-window
attention branch (local order) and a large-chunk fast-weight branch (long-range memory), summed and
projected. Reconstruction notes: fast-weight q/k take no RoPE (the spec's NoPE option), the fast
weights are initialised N(0, 1/fan_in) (the minimal layer's choice), and padding masks are not
supported (sequences are unpadded: training batches are fixed-length, decoding runs one row)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tts.learn.lact.ops import FastWeightState, UpdateRule, lact_update_apply


def rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary embedding on [B, H, L, hd] at absolute `positions` [L] (rotate-half layout)."""
    half = x.shape[-1] // 2
    freqs = theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = positions.to(torch.float32)[:, None] * freqs[None]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@dataclass
class LayerCache:
    """What a layer keeps between decode calls: the attention window (post-RoPE keys) and the
    fast-weight memory with its buffered partial chunk."""

    keys: torch.Tensor
    values: torch.Tensor
    positions: torch.Tensor
    memory: FastWeightState | None
    last: torch.Tensor | None = None  # the previous token's input (key shift)


class LaCTLayer(nn.Module):
    def __init__(self, hidden: int, attn_heads: int, fw_heads: int, chunk_size: int, window: int,
                 inter_multi: int = 1, base_lr: float = 1e-2, rule: UpdateRule = UpdateRule(),
                 qkv_silu: bool = True, use_lact: bool = True, rope_theta: float = 1e4, key_shift: bool = False) -> None:
        super().__init__()
        if hidden % attn_heads or hidden % fw_heads:
            raise ValueError("hidden must be divisible by the attention and fast-weight head counts")
        self.hidden, self.attn_heads, self.fw_heads = hidden, attn_heads, fw_heads
        self.chunk_size, self.window, self.rule, self.qkv_silu = chunk_size, window, rule, qkv_silu
        self.use_lact, self.theta, self.base_lr = use_lact, rope_theta, base_lr
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.o_proj = nn.Linear(hidden, hidden, bias=False)
        # our extension (not in the reference): keys read a learned mix of this and the previous token,
        # k = W_k (x_t + μ ⊙ (x_{t−1} − x_t)), so one token's key can carry its predecessor (RWKV's token shift)
        self.key_mix = nn.Parameter(torch.full((hidden,), 0.5)) if key_shift else None
        if not use_lact:
            return
        d = hidden // fw_heads
        dh = inter_multi * d
        self.w0 = nn.Parameter(torch.empty(fw_heads, dh, d))
        self.w1 = nn.Parameter(torch.empty(fw_heads, d, dh))
        self.w2 = nn.Parameter(torch.empty(fw_heads, dh, d))
        self.qk_scale = nn.Parameter(torch.ones(2, hidden))
        self.qk_offset = nn.Parameter(torch.zeros(2, hidden))
        self.lr_proj = nn.Linear(hidden, 3 * fw_heads)
        self.mom_proj = nn.Linear(hidden, fw_heads) if rule.use_momentum else None
        self.fw_norm = nn.RMSNorm(d, eps=1e-5)
        self.ttt_scale = nn.Linear(hidden, fw_heads)
        self.reset_fast_weights()

    def reset_fast_weights(self) -> None:
        """Slow initial fast weights N(0, 1/fan_in); zero-bias rate and scale heads."""
        if not self.use_lact:
            return
        with torch.no_grad():
            for w in (self.w0, self.w1, self.w2):
                w.normal_(0.0, w.shape[-1] ** -0.5)
            for lin in (self.lr_proj, self.mom_proj, self.ttt_scale):
                if lin is not None:
                    lin.weight.normal_(0.0, 0.02)
                    lin.bias.zero_()

    # -- branches ------------------------------------------------------------------------------
    def _attention(self, q, k, v, positions, cache: LayerCache | None):
        b, length, _ = q.shape
        hd = self.hidden // self.attn_heads
        split = lambda t: t.view(b, length, self.attn_heads, hd).transpose(1, 2)  # noqa: E731
        qa, ka, va = rope(split(q), positions, self.theta), rope(split(k), positions, self.theta), split(v)
        kpos = positions
        if cache is not None and cache.keys.numel():
            ka, va = torch.cat([cache.keys, ka], dim=2), torch.cat([cache.values, va], dim=2)
            kpos = torch.cat([cache.positions, positions])
        gap = positions[:, None] - kpos[None, :]
        allowed = (gap >= 0) & (gap < self.window)
        scores = (qa @ ka.transpose(-2, -1)) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        out = (scores.softmax(-1) @ va).transpose(1, 2).reshape(b, length, self.hidden)
        keep = kpos > positions[-1] - self.window  # what later tokens can still see
        return out, (ka[:, :, keep], va[:, :, keep], kpos[keep])

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """[B, L, Hf·x] -> [B·Hf, L, x] (batch-major, head-minor: the fast weights' layout)."""
        b, length = t.shape[:2]
        return t.view(b, length, self.fw_heads, -1).permute(0, 2, 1, 3).reshape(b * self.fw_heads, length, -1)

    def _fast(self, x, q, k, v, cache: LayerCache | None, use_cache: bool):
        b, length, _ = x.shape
        act = F.silu if self.qkv_silu else (lambda t: t)
        qf = self._heads(act(q * self.qk_scale[0] + self.qk_offset[0]))
        kf = self._heads(act(k * self.qk_scale[1] + self.qk_offset[1]))
        vf = self._heads(act(v))
        qf, kf = qf / (qf.norm(dim=-1, keepdim=True) + 1e-5), kf / (kf.norm(dim=-1, keepdim=True) + 1e-5)
        lr = self._heads(F.softplus(self.lr_proj(x).float() + inv_softplus(self.base_lr))).to(x.dtype)
        lrs = (lr[..., 0:1], lr[..., 1:2], lr[..., 2:3])
        beta = self._heads(torch.sigmoid(self.mom_proj(x))) if self.mom_proj is not None else None
        memory = cache.memory if cache is not None else None
        if memory is None and not use_cache:
            w = tuple(m.repeat(b, 1, 1) for m in (self.w0, self.w1, self.w2))
            o = lact_update_apply(w, qf, kf, vf, *lrs, momentum=beta, chunk_size=self.chunk_size, rule=self.rule)
        else:
            if memory is None:
                memory = FastWeightState.start(tuple(m.repeat(b, 1, 1) for m in (self.w0, self.w1, self.w2)),
                                               self.chunk_size, self.rule)
            o = memory(qf, kf, vf, lrs, beta)
        o = self.fw_norm(o).view(b, self.fw_heads, length, -1) * F.silu(self.ttt_scale(x)).transpose(1, 2)[..., None]
        return o.transpose(1, 2).reshape(b, length, self.hidden), memory

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None, use_cache: bool = False,
                start: int = 0) -> tuple[torch.Tensor, LayerCache | None]:
        """y for x [B, L, D] at positions start..start+L−1; the new cache when `use_cache`."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        last = x[:, -1]
        if self.key_mix is not None:
            prev = cache.last if cache is not None and cache.last is not None else torch.zeros_like(x[:, 0])
            shifted = torch.cat([prev[:, None], x[:, :-1]], dim=1)
            k = F.linear(x + self.key_mix * (shifted - x), self.qkv.weight[self.hidden: 2 * self.hidden])
        positions = torch.arange(start, start + x.shape[1], device=x.device)
        out, window = self._attention(q, k, v, positions, cache)
        memory = None
        if self.use_lact:
            o_fw, memory = self._fast(x, q, k, v, cache, use_cache)
            out = out + o_fw
        new = LayerCache(*window, memory, last) if use_cache else None
        return self.o_proj(out), new


def layer_kwargs(config: Any) -> dict[str, Any]:
    """LaCTLayer arguments from a LaCTConfig."""
    return dict(hidden=config.hidden_size, attn_heads=config.num_attention_heads, fw_heads=config.num_fw_heads,
                chunk_size=config.chunk_size, window=config.window, inter_multi=config.inter_multi,
                base_lr=config.base_lr, rule=UpdateRule(config.use_momentum, config.use_muon, config.weight_norm),
                qkv_silu=config.qkv_silu, use_lact=config.use_lact, rope_theta=config.rope_theta,
                key_shift=getattr(config, "key_shift", False))
