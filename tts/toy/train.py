"""Seeded training of the toy Llama (`tts toy train`). Training is fixed by step count, not wall
time, so a seed and a size give the same model on any machine (up to float nondeterminism)."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tts.toy.task import TEST_SEED, TEST_SIZE, problems, prompt_text, random_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToySize:
    layers: int
    hidden: int
    heads: int
    mlp: int
    experts: int = 0  # > 0: an OLMoE-style mixture of experts (top-2), for test-time rerouting


# "default" is the quickstart model; "small" makes a clearly weaker draft for ATTS; "moe" is the
# mixture-of-experts model the `reroute` generator runs on, on CPU.
SIZES = {"default": ToySize(4, 128, 4, 512), "small": ToySize(2, 64, 2, 256),  # head_dim 32: vLLM CPU needs >= 32
         "moe": ToySize(4, 128, 4, 128, experts=8)}
# Steps the packaged toy models were trained with (small: ~30% single-sample accuracy).
PACKAGED_STEPS = {"default": 1000, "small": 1800, "moe": 1000}


def _config(shape: ToySize, tok):
    """A Llama config, or an OLMoE one (8 experts, top-2) for MoE sizes."""
    from transformers import LlamaConfig, OlmoeConfig

    common = dict(vocab_size=len(tok), hidden_size=shape.hidden, intermediate_size=shape.mlp,
                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads, num_key_value_heads=shape.heads,
                  max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if shape.experts:
        return OlmoeConfig(**common, num_experts=shape.experts, num_experts_per_tok=2, router_aux_loss_coef=0.01,
                           output_router_logits=False)
    return LlamaConfig(**common)


def _batch(tok, rng: random.Random, size: int, n_ops: int, held_out: set[str]):
    """Token ids, attention mask and labels (chain and answer tokens only) for one batch."""
    import torch

    seqs, starts = [], []
    while len(seqs) < size:
        p = random_problem(rng, n_ops)
        if p.text in held_out:
            continue
        prompt = tok.encode(prompt_text(p.text))
        seqs.append(prompt + tok.encode(p.chain, add_special_tokens=False) + [tok.eos_token_id])
        starts.append(len(prompt))
    width = max(map(len, seqs))
    ids = torch.full((size, width), tok.pad_token_id)
    labels = torch.full((size, width), -100)
    mask = torch.zeros((size, width), dtype=torch.long)
    for i, (s, start) in enumerate(zip(seqs, starts)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        labels[i, start: len(s)] = torch.tensor(s[start:])
    return ids, mask, labels


def train(out: str | Path, size: str = "default", steps: int = 1000, batch: int = 64, lr: float = 2e-3,
          seed: int = 0, n_ops: int = 2, log_every: int = 100) -> dict:
    """Train a toy model and save it (HF format, with tokenizer and a training card) in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from tts.toy.tokenizer import build_tokenizer

    if size not in SIZES:
        raise ValueError(f"unknown toy size '{size}' (sizes: {', '.join(SIZES)})")
    out = Path(out)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = build_tokenizer()
    shape = SIZES[size]
    model = AutoModelForCausalLM.from_config(_config(shape, tok))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / steps))
    held_out = {p.text for p in problems(TEST_SIZE, TEST_SEED, n_ops)}
    model.train()
    t0, loss_value = time.perf_counter(), float("nan")
    for step in range(steps):
        ids, mask, labels = _batch(tok, rng, batch, n_ops, held_out)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
        if log_every and (step + 1) % log_every == 0:
            log.info("step %d/%d loss %.4f (%.1f s)", step + 1, steps, loss_value, time.perf_counter() - t0)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                               bos_token_id=tok.bos_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    card = {"size": size, **asdict(shape), "steps": steps, "batch": batch, "lr": lr, "seed": seed,
            "n_ops": n_ops, "final_loss": loss_value, "seconds": round(time.perf_counter() - t0, 1),
            "parameters": sum(p.numel() for p in model.parameters())}
    (out / "toy_card.json").write_text(json.dumps(card, indent=2))
    return card
