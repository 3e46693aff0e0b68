"""A pure-PyTorch RWKV-7 ("Goose", x070) language model as a transformers model (config
`tts_rwkv7`), with parameter names and shapes of the official RWKV-LM checkpoints (`.pth` files load
as they are; flash-linear-attention's Hugging Face layout through `tts.learn.rwkv7.convert`). The
state — per layer (att_shift [B, C], wkv [B, H, N, N] float32, ffn_shift [B, C]) — is both the
decode cache and what state tuning learns (spec rwkv7-state-tuning.md §1–2)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from tts.learn.rwkv7.wkv import pick


class RWKV7Config(PretrainedConfig):
    model_type = "tts_rwkv7"

    def __init__(self, vocab_size: int = 256, hidden_size: int = 64, num_hidden_layers: int = 2, head_size: int = 16,
                 intermediate_size: int | None = None, decay_low_rank: int = 16, a_low_rank: int = 16,
                 v_low_rank: int = 8, gate_low_rank: int = 32, kernel: str = "auto", chunk_size: int = 16,
                 tie_word_embeddings: bool = False, **kwargs: Any) -> None:
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        self.head_size, self.num_attention_heads = head_size, hidden_size // head_size
        self.intermediate_size = intermediate_size or 4 * hidden_size
        self.decay_low_rank, self.a_low_rank, self.v_low_rank, self.gate_low_rank = (decay_low_rank, a_low_rank,
                                                                                     v_low_rank, gate_low_rank)
        self.kernel, self.chunk_size = kernel, chunk_size
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


@dataclass
class RWKV7State:
    """The recurrent state of every layer; `seen` counts tokens (for transformers' bookkeeping)."""

    att_shift: list[torch.Tensor] = field(default_factory=list)
    wkv: list[torch.Tensor] = field(default_factory=list)
    ffn_shift: list[torch.Tensor] = field(default_factory=list)
    seen: int = 0

    @classmethod
    def zeros(cls, config: RWKV7Config, batch: int, device: Any, dtype: torch.dtype) -> "RWKV7State":
        c, h, n, layers = config.hidden_size, config.num_attention_heads, config.head_size, config.num_hidden_layers
        return cls([torch.zeros(batch, c, device=device, dtype=dtype) for _ in range(layers)],
                   [torch.zeros(batch, h, n, n, device=device, dtype=torch.promote_types(dtype, torch.float32))
                    for _ in range(layers)],
                   [torch.zeros(batch, c, device=device, dtype=dtype) for _ in range(layers)])

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen


def _shift(x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """x_{t−1} − x_t with x_{−1} = `last`."""
    return torch.cat([last[:, None], x[:, :-1]], dim=1) - x


class TimeMix(nn.Module):
    def __init__(self, config: RWKV7Config, layer: int) -> None:
        super().__init__()
        c, self.h, self.n = config.hidden_size, config.num_attention_heads, config.head_size
        self.layer, self.config = layer, config
        for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "k_k", "k_a"):
            setattr(self, name, nn.Parameter(torch.zeros(1, 1, c)))
        lr = {"w": config.decay_low_rank, "a": config.a_low_rank, "g": config.gate_low_rank}
        if layer > 0:
            self.v0 = nn.Parameter(torch.zeros(1, 1, c))
            lr["v"] = config.v_low_rank
        for name, rank in lr.items():
            setattr(self, f"{name}1", nn.Parameter(torch.zeros(c, rank)))
            setattr(self, f"{name}2", nn.Parameter(torch.zeros(rank, c)))
        self.r_k = nn.Parameter(torch.zeros(self.h, self.n))
        self.receptance, self.key, self.value, self.output = (nn.Linear(c, c, bias=False) for _ in range(4))
        self.ln_x = nn.GroupNorm(self.h, c, eps=64e-5)

    def forward(self, x, shift, wkv, v_first, s0=None):
        b, t, c = x.shape
        xx = _shift(x, shift)
        xr, xw, xk, xv, xa, xg = (x + xx * m for m in (self.x_r, self.x_w, self.x_k, self.x_v, self.x_a, self.x_g))
        r, k, v = self.receptance(xr), self.key(xk), self.value(xv)
        w = self.w0 + torch.tanh(xw @ self.w1) @ self.w2
        a = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(b, t, self.h, self.n), dim=-1, eps=1e-12)
        k = k * (1 + (a - 1) * self.k_a)
        if self.layer == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        logd = -math.exp(-0.5) * torch.sigmoid(w.float())  # log of d = exp(−e^{−0.5} σ(w̃))
        heads = lambda z: z.view(b, t, self.h, self.n).to(wkv.dtype)  # noqa: E731
        kernel = pick(self.config.kernel, x.device)
        args = (heads(r), heads(logd), heads(k), heads(v), -kk.to(wkv.dtype), (kk * heads(a)).to(wkv.dtype), wkv)
        o, wkv = kernel(*args, chunk=self.config.chunk_size)
        o = self.ln_x(o.reshape(b * t, c).to(x.dtype)).view(b, t, c)
        bonus = (heads(r) * heads(k) * self.r_k).sum(-1, keepdim=True) * heads(v)
        o = o + bonus.reshape(b, t, c).to(x.dtype)
        return self.output(o * g), x[:, -1], wkv, v_first


class ChannelMix(nn.Module):
    def __init__(self, config: RWKV7Config) -> None:
        super().__init__()
        self.x_k = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.key = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.value = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x, shift):
        k = x + _shift(x, shift) * self.x_k
        return self.value(torch.relu(self.key(k)) ** 2), x[:, -1]


class Block(nn.Module):
    def __init__(self, config: RWKV7Config, layer: int) -> None:
        super().__init__()
        c = config.hidden_size
        if layer == 0:
            self.ln0 = nn.LayerNorm(c)
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.att, self.ffn = TimeMix(config, layer), ChannelMix(config)


class RWKV7ForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = RWKV7Config
    base_model_prefix = "rwkv7"
    tts_recurrent = True  # the hf backend decodes it row by row with its own state

    def __init__(self, config: RWKV7Config) -> None:
        super().__init__(config)
        self.emb = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.ln_out = nn.LayerNorm(config.hidden_size)
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """A small random init with decays spread over (0.545, 1) (random-weight models for tests and tasks)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02 if isinstance(module, nn.Embedding) else 0.5 / math.sqrt(
                module.weight.shape[1]))
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, TimeMix):
            c = module.x_r.shape[-1]
            ramp = torch.arange(c, dtype=torch.float32) / max(c - 1, 1)
            with torch.no_grad():
                for p in (module.x_r, module.x_w, module.x_k, module.x_v, module.x_a, module.x_g):
                    p.copy_(0.5 * (1 - ramp))
                module.w0.copy_(-6 + 8 * ramp ** 0.7)
                module.k_k.fill_(0.85)
                module.k_a.fill_(1.0)
                module.r_k.normal_(0.0, 0.1)
                for name in ("w", "a", "g", "v"):
                    if hasattr(module, f"{name}1"):
                        getattr(module, f"{name}1").zero_()
                        nn.init.orthogonal_(getattr(module, f"{name}2"), gain=0.1)
        elif isinstance(module, ChannelMix):
            nn.init.constant_(module.x_k, 0.5)

    def get_input_embeddings(self) -> nn.Module:
        return self.emb

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past_key_values: RWKV7State | None = None, use_cache: bool | None = None,
                labels: torch.Tensor | None = None, logits_to_keep: int = 0, **_: Any) -> CausalLMOutputWithPast:
        """Logits for `input_ids` [B, T] starting from `past_key_values` (a state; zeros when None —
        or S0 from a state tuner); the state after them is returned. Rows must be unpadded."""
        x = self.emb(input_ids)
        state = past_key_values or RWKV7State.zeros(self.config, x.shape[0], x.device, x.dtype)
        new = RWKV7State(seen=state.seen + input_ids.shape[1])
        v_first = None
        for i, block in enumerate(self.blocks):
            if i == 0:
                x = block.ln0(x)
            y, att_shift, wkv, v_first = block.att(block.ln1(x), state.att_shift[i], state.wkv[i], v_first)
            x = x + y
            y, ffn_shift = block.ffn(block.ln2(x), state.ffn_shift[i])
            x = x + y
            new.att_shift.append(att_shift), new.wkv.append(wkv), new.ffn_shift.append(ffn_shift)
        hidden = self.ln_out(x)
        logits = self.head(hidden[:, -logits_to_keep:] if logits_to_keep else hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=new)


__all__ = ["RWKV7Config", "RWKV7ForCausalLM", "RWKV7State"]
