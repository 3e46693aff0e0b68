"""Builds tiny real models for tests: a BPE tokenizer trained with `tokenizers` and a random
Llama saved in Hugging Face format, loaded back through the real loading path."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

CORPUS = [
    "What is 12 + 7? The answer is 19.",
    "Compute 3 * 4 then add 5. 3*4=12;12+5=17#17",
    "The quick brown fox jumps over the lazy dog.",
    "Let x be the number of apples. Then x = 42 and the answer is \\boxed{42}.",
    "Step 1: 55-42=13. Step 2: 13*3=39. Step 3: 39+79=118. Final answer 118.",
] * 20


def build_tokenizer(out: Path, vocab_size: int = 320, extra_specials: tuple[str, ...] = ()):
    """Train a byte-level BPE tokenizer and save it as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
                *extra_specials]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|bos|>",
                                   eos_token="<|eos|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def build_tiny_llama(out: Path, seed: int = 0, layers: int = 2, hidden: int = 64,
                     extra_specials: tuple[str, ...] = ()) -> Path:
    """Save a random tiny Llama with its tokenizer in `out` and return the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out)
    tok = build_tokenizer(out, extra_specials=extra_specials)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    # Random init is near-uniform; sharpen it so samples are diverse but not pure noise.
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    model.save_pretrained(out)
    return out


def build_tiny_head(out: Path, kind: str = "sequence", num_labels: int = 1, seed: int = 1,
                    hidden: int = 64) -> Path:
    """A random tiny Llama with a sequence- or token-classification head (reward model, PRM);
    hidden=128 gives head_dim 32, the smallest vLLM's CPU kernels take."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification, LlamaForTokenClassification

    out = Path(out)
    tok = build_tokenizer(out)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, num_labels=num_labels)
    cls = LlamaForSequenceClassification if kind == "sequence" else LlamaForTokenClassification
    cls(config).save_pretrained(out)
    return out


def build_tiny_moe(out: Path, kind: str = "olmoe", seed: int = 0) -> Path:
    """A random tiny Mixture-of-Experts LM (OLMoE, Qwen2-MoE or Mixtral) with the test tokenizer."""
    from tts.learn.moe_task import tiny_moe

    out = Path(out)
    tok = build_tokenizer(out)
    model = tiny_moe(kind, seed=seed, vocab=len(tok))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.config, key, getattr(tok, key))
        setattr(model.generation_config, key, getattr(tok, key))
    model.save_pretrained(out)
    return out
