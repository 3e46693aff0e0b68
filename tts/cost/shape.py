"""`ModelShape`: the numbers a cost model needs about a transformer, read from its HF config."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    """Layer counts and widths of a decoder; `active_params` differs from `params` for MoE."""

    params: int
    active_params: int
    num_layers: int = 0
    hidden_size: int = 0
    num_heads: int = 0
    num_kv_heads: int = 0
    head_dim: int = 0
    intermediate_size: int = 0
    vocab_size: int = 0
    num_experts: int = 0
    experts_per_token: int = 0
    state_size: int = 0  # recurrent models: state elements per sequence (0: a KV cache instead)

    @classmethod
    def from_hf_config(cls, config: Any, params: int | None = None) -> "ModelShape":
        """Build from a `transformers` config; `params` overrides the estimate when known."""
        get = lambda *names, default=0: next(  # noqa: E731
            (getattr(config, n) for n in names if getattr(config, n, None) is not None), default
        )
        hidden = int(get("hidden_size", "n_embd", "d_model"))
        heads = int(get("num_attention_heads", "n_head"))
        kv_heads = int(get("num_key_value_heads", default=heads))
        head_dim = int(get("head_dim", default=hidden // max(heads, 1)))
        layers = int(get("num_hidden_layers", "n_layer"))
        inter = int(get("intermediate_size", "moe_intermediate_size", default=4 * hidden))
        vocab = int(get("vocab_size"))
        experts = int(get("num_local_experts", "num_experts", "n_routed_experts"))
        topk = int(get("num_experts_per_tok", "num_experts_per_token", "moe_topk"))
        total = params if params is not None else cls._estimate(hidden, heads, kv_heads, head_dim,
                                                                 layers, inter, vocab, experts)
        active = total
        if experts and topk:
            mlp_per_expert = 3 * hidden * inter * layers
            active = total - (experts - topk) * mlp_per_expert
        return cls(total, active, layers, hidden, heads, kv_heads, head_dim, inter, vocab,
                   experts, topk, cls._state_size(config, layers, hidden, head_dim))

    @staticmethod
    def _state_size(config: Any, layers: int, hidden: int, head_dim: int) -> int:
        """RWKV-style models keep a per-head (head_dim × head_dim) matrix state plus two token-shift
        vectors per layer instead of a KV cache; `state_size` in the config overrides this."""
        explicit = getattr(config, "state_size", None)
        if isinstance(explicit, int) and explicit > 0:
            return explicit
        if "rwkv" not in str(getattr(config, "model_type", "")).lower():
            return 0
        head = head_dim if head_dim and head_dim != hidden else 64
        return layers * (hidden * head + 2 * hidden)

    @staticmethod
    def _estimate(hidden: int, heads: int, kv: int, hd: int, layers: int, inter: int, vocab: int,
                  experts: int) -> int:
        attn = hidden * hd * (heads + 2 * kv) + heads * hd * hidden
        mlp = 3 * hidden * inter * max(experts, 1)
        return layers * (attn + mlp) + vocab * hidden

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
