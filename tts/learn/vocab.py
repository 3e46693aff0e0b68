"""Word-level tokenizers for the synthetic learning tasks: one token per name, ids = positions, saved
in Hugging Face format so the task models load like any model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def word_tokenizer(names: list[str], out: str | Path | None = None, bos: str | None = None) -> Any:
    """A fast tokenizer splitting on whitespace; `names` must hold `<pad>` and `<eos>`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={n: i for i, n in enumerate(names)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    extra = {"bos_token": bos} if bos else {}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<pad>", **extra)
    if out is not None:
        fast.save_pretrained(out)
    return fast
