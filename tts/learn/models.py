"""Model types tts defines (LaCT, RWKV-7), registered with transformers' Auto classes so a saved
folder loads through `AutoModelForCausalLM` and so through the hf backend."""

from __future__ import annotations

_DONE = False


def register() -> None:
    """Idempotent; imports torch and transformers (call it where a model is about to load)."""
    global _DONE
    if _DONE:
        return
    from transformers import AutoConfig, AutoModelForCausalLM

    from tts.learn.lact.model import LaCTConfig, LaCTForCausalLM

    for config, model in ((LaCTConfig, LaCTForCausalLM),) + _rwkv():
        AutoConfig.register(config.model_type, config, exist_ok=True)
        AutoModelForCausalLM.register(config, model, exist_ok=True)
    _DONE = True


def _rwkv() -> tuple:
    try:
        from tts.learn.rwkv7.model import RWKV7Config, RWKV7ForCausalLM
    except ImportError:  # not built yet in this checkout
        return ()
    return ((RWKV7Config, RWKV7ForCausalLM),)
