"""Loading the hf backend's model: a transformers folder, hub id or GGUF file through the Auto
classes, or a checkpoint format a `checkpoints` registry entry opens (a PERK checkpoint: its base
model with the meta-learned adapter around it). One clear error line when loading fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tts.backends.base import BackendError, brief


@dataclass
class Loaded:
    """What a backend serves (`model`, `tokenizer`) and what a lease hands out (`owner`: the object
    that holds the model, such as a PERK wrapper; the model itself for plain checkpoints)."""

    model: Any
    tokenizer: Any
    owner: Any = None

    def __post_init__(self) -> None:
        if self.owner is None:
            self.owner = self.model


def load_model(path: str, tokenizer: str | None, gguf_file: str | None, dtype: str, device: str,
               device_map: Any, trust_remote_code: bool, attn_implementation: str | None) -> Loaded:
    """The model at `path` (already resolved), evaluated on `device` (or spread by `device_map`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tts.registry import open_checkpoint, register_model_types

    register_model_types()  # tts's own model types (LaCT, RWKV-7) and plug-ins'
    try:
        opened = None if gguf_file else open_checkpoint(path, device_map and "cpu" or device)
        if opened is not None:
            return opened
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        tok = AutoTokenizer.from_pretrained(tokenizer or path, **kwargs)
        if dtype != "auto":
            kwargs["dtype"] = getattr(torch, dtype)
        if device_map is not None:
            kwargs["device_map"] = device_map
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except BackendError:
        raise
    except Exception as exc:  # transformers raises many types; the user needs one line
        raise BackendError(f"hf backend: cannot load '{path}': {brief(exc)}") from exc
    if device_map is None:
        model = model.to(device)
    return Loaded(model.eval(), tok)
