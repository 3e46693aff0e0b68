"""A small LaCT language model as a transformers model (config `tts_lact`): blocks of
x + LaCT-SWA(RMSNorm x), x + SwiGLU(RMSNorm x). Saves and loads with save_pretrained /
AutoModelForCausalLM (after `tts.learn.models.register()`), and decodes through the hf backend's
recurrent path with its own cache (attention window + fast-weight memory with a partial chunk)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from tts.learn.lact.layer import LaCTLayer, LayerCache, layer_kwargs


class LaCTConfig(PretrainedConfig):
    model_type = "tts_lact"

    def __init__(self, vocab_size: int = 256, hidden_size: int = 64, num_hidden_layers: int = 2,
                 num_attention_heads: int = 2, num_fw_heads: int = 2, intermediate_size: int = 256,
                 chunk_size: int = 64, window: int = 32, inter_multi: int = 1, base_lr: float = 1e-2,
                 use_momentum: bool = True, use_muon: bool = False, weight_norm: bool = True, use_lact: bool = True,
                 qkv_silu: bool = True, key_shift: bool = False, rope_theta: float = 1e4, max_position_embeddings: int = 8192,
                 rms_norm_eps: float = 1e-5, initializer_range: float = 0.02, tie_word_embeddings: bool = True,
                 **kwargs: Any) -> None:
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        self.num_attention_heads, self.num_fw_heads, self.intermediate_size = num_attention_heads, num_fw_heads, intermediate_size
        self.num_key_value_heads = num_attention_heads
        self.chunk_size, self.window, self.inter_multi, self.base_lr = chunk_size, window, inter_multi, base_lr
        self.use_momentum, self.use_muon, self.weight_norm, self.use_lact = use_momentum, use_muon, weight_norm, use_lact
        self.key_shift = key_shift
        self.qkv_silu, self.rope_theta, self.max_position_embeddings = qkv_silu, rope_theta, max_position_embeddings
        self.rms_norm_eps, self.initializer_range = rms_norm_eps, initializer_range
        # constant-size state per sequence for the Kinetics cost model: fast weights + the window's K/V
        kwargs.pop("state_size", None)
        self.state_size = num_hidden_layers * (3 * hidden_size * inter_multi * hidden_size // num_fw_heads * use_lact
                                               + 2 * window * hidden_size)
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


@dataclass
class LaCTCache:
    """Per-layer caches and the number of tokens seen (the next position)."""

    layers: list[LayerCache | None] = field(default_factory=list)
    seen: int = 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen


class SwiGLU(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.gate, self.up = nn.Linear(hidden, inner, bias=False), nn.Linear(hidden, inner, bias=False)
        self.down = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class LaCTBlock(nn.Module):
    def __init__(self, config: LaCTConfig) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mix = LaCTLayer(**layer_kwargs(config))
        self.norm2 = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)

    def forward(self, x, cache, use_cache, start):
        y, cache = self.mix(self.norm1(x), cache, use_cache, start)
        x = x + y
        return x + self.mlp(self.norm2(x)), cache


class LaCTForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = LaCTConfig
    base_model_prefix = "lact"
    tts_recurrent = True  # the hf backend decodes it row by row with its own cache
    _tied_weights_keys = {"lm_head.weight": "embed.weight"}

    def __init__(self, config: LaCTConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(LaCTBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.RMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, LaCTLayer) and module.key_mix is not None:
            nn.init.constant_(module.key_mix, 0.5)
        if isinstance(module, LaCTLayer) and module.use_lact:
            nn.init.ones_(module.qk_scale)
            nn.init.zeros_(module.qk_offset)
            module.reset_fast_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past_key_values: LaCTCache | None = None, use_cache: bool | None = None,
                labels: torch.Tensor | None = None, logits_to_keep: int = 0, **_: Any) -> CausalLMOutputWithPast:
        """Causal LM forward; `past_key_values` continues a sequence (unpadded rows only)."""
        use_cache = bool(use_cache) or past_key_values is not None
        cache = past_key_values if past_key_values is not None else (LaCTCache() if use_cache else None)
        start = cache.seen if cache is not None else 0
        x = self.embed(input_ids)
        new_layers = []
        for i, block in enumerate(self.blocks):
            old = cache.layers[i] if cache is not None and i < len(cache.layers) else None
            x, layer_cache = block(x, old, use_cache, start)
            new_layers.append(layer_cache)
        hidden = self.norm(x)
        logits = self.lm_head(hidden[:, -logits_to_keep:] if logits_to_keep else hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        if cache is not None:
            cache.layers, cache.seen = new_layers, start + input_ids.shape[1]
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=cache)


__all__ = ["LaCTCache", "LaCTConfig", "LaCTForCausalLM"]
