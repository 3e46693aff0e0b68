"""Loading RWKV-7 weights from the two layouts in the wild into `RWKV7ForCausalLM`:

- the official RWKV-LM `.pth` (BlinkDL; `blocks.{i}.att.w1` ...): our parameter names and shapes
  are that layout's, so it loads as is; the config is read from the tensor shapes;
- flash-linear-attention's Hugging Face layout (`model.layers.{i}.attn.w_lora.lora.0.weight` ...):
  low-rank maps are `nn.Linear`s there (weights transposed, the 0-vectors as biases), projections
  renamed, and layer 0 carries an unused value LoRA.

`to_fla` writes the second layout (for tests and for users moving to fla)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

_PROJ = {"receptance": "r_proj", "key": "k_proj", "value": "v_proj", "output": "o_proj", "ln_x": "g_norm"}
_PART = {"att": "attn", "ffn": "ffn", "ln0": "pre_norm", "ln1": "attn_norm", "ln2": "ffn_norm"}
_TOP = {"emb.weight": "model.embeddings.weight", "ln_out.weight": "model.norm.weight",
        "ln_out.bias": "model.norm.bias", "head.weight": "lm_head.weight"}
_LORA = {"0": "2.bias", "1": "0.weight", "2": "2.weight"}


def fla_name(name: str) -> tuple[str, bool, bool]:
    """(fla name, transposed, squeezed) for one official parameter name."""
    if name in _TOP:
        return _TOP[name], False, False
    parts = name.split(".")
    parts[0], parts[2] = "model.layers", _PART[parts[2]]
    if parts[2] == "attn" and re.fullmatch("[wvag][012]", parts[3]):
        kind, num = parts[3]
        parts[3] = f"{kind}_lora.lora.{_LORA[num]}"
        return ".".join(parts), num in "12", num == "0"
    if parts[2] == "attn" and parts[3] in _PROJ:
        parts[3] = _PROJ[parts[3]]
    return ".".join(parts), False, False


def config_from_official(sd: dict[str, torch.Tensor], **extra: Any):
    from tts.learn.rwkv7.model import RWKV7Config

    layers = 0
    while f"blocks.{layers}.ffn.key.weight" in sd:
        layers += 1
    if not layers:
        raise ValueError("not an RWKV-7 checkpoint: no blocks.0.ffn.key.weight")
    h, n = sd["blocks.0.att.r_k"].shape
    return RWKV7Config(vocab_size=sd["emb.weight"].shape[0], hidden_size=sd["emb.weight"].shape[1],
                       num_hidden_layers=layers, head_size=n, intermediate_size=sd["blocks.0.ffn.key.weight"].shape[0],
                       decay_low_rank=sd["blocks.0.att.w1"].shape[1], a_low_rank=sd["blocks.0.att.a1"].shape[1],
                       v_low_rank=sd["blocks.1.att.v1"].shape[1] if layers > 1 else 8,
                       gate_low_rank=sd["blocks.0.att.g1"].shape[1], **extra)


def load_official(path: str | Path, **config: Any):
    """An official RWKV-LM x070 `.pth` as an `RWKV7ForCausalLM` (float32)."""
    from tts.learn.rwkv7.model import RWKV7ForCausalLM

    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = RWKV7ForCausalLM(config_from_official(sd, **config))
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model.eval()


def to_fla(model) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, config.json) in flash-linear-attention's layout for `model`."""
    out = {}
    for name, t in model.state_dict().items():
        new, transposed, squeezed = fla_name(name)
        out[new] = t.T.contiguous() if transposed else t.reshape(-1) if squeezed else t
    c = model.config
    for i in (0,):  # fla's layer 0 has a value LoRA it never uses
        out[f"model.layers.{i}.attn.v_lora.lora.0.weight"] = torch.zeros(c.v_low_rank, c.hidden_size)
        out[f"model.layers.{i}.attn.v_lora.lora.2.weight"] = torch.zeros(c.hidden_size, c.v_low_rank)
        out[f"model.layers.{i}.attn.v_lora.lora.2.bias"] = torch.zeros(c.hidden_size)
    config = {"model_type": "rwkv7", "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
              "num_hidden_layers": c.num_hidden_layers, "head_dim": c.head_size,
              "num_heads": c.num_attention_heads, "intermediate_size": c.intermediate_size,
              "decay_low_rank_dim": c.decay_low_rank, "a_low_rank_dim": c.a_low_rank,
              "v_low_rank_dim": c.v_low_rank, "gate_low_rank_dim": c.gate_low_rank, "norm_eps": 1e-5}
    return out, config


def load_fla(folder: str | Path, **config: Any):
    """A flash-linear-attention RWKV-7 folder (config.json + model.safetensors) as ours."""
    from safetensors.torch import load_file

    from tts.learn.rwkv7.model import RWKV7Config, RWKV7ForCausalLM

    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("model_type") != "rwkv7":
        raise ValueError(f"{folder} is not a flash-linear-attention RWKV-7 folder (model_type {cfg.get('model_type')!r})")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors weights")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(load_file(f))
    ours = RWKV7Config(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                       num_hidden_layers=cfg["num_hidden_layers"], head_size=cfg.get("head_dim", 64),
                       intermediate_size=cfg.get("intermediate_size"), decay_low_rank=cfg["decay_low_rank_dim"],
                       a_low_rank=cfg["a_low_rank_dim"], v_low_rank=cfg["v_low_rank_dim"],
                       gate_low_rank=cfg["gate_low_rank_dim"], **config)
    model = RWKV7ForCausalLM(ours)
    state = {}
    for name, t in model.state_dict().items():
        src, transposed, squeezed = fla_name(name)
        if src not in sd:
            raise KeyError(f"{folder}: missing {src} (for {name})")
        w = sd[src].float()
        state[name] = w.T if transposed else w.reshape(t.shape) if squeezed else w.reshape(t.shape)
    model.load_state_dict(state, strict=True)
    return model.eval()
