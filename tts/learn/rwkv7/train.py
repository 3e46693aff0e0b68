"""Training for the RWKV-7 pattern task: `pretrain` a tiny RWKV-7 on in-context lookup (saved as a
model folder the hf backend loads), and `tune` a state for the hidden rule on it (`tts learn state`),
with the three references of the spec: zero state, table as prefix, tuned state."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import torch


def build(seed: int = 0, hidden: int = 64, head: int = 16, layers: int = 2):
    from tts.learn.rwkv7 import pattern
    from tts.learn.rwkv7.model import RWKV7Config, RWKV7ForCausalLM

    torch.manual_seed(seed)
    return RWKV7ForCausalLM(RWKV7Config(vocab_size=pattern.VOCAB, hidden_size=hidden, head_size=head,
                                        num_hidden_layers=layers, decay_low_rank=16, a_low_rank=16, v_low_rank=8,
                                        gate_low_rank=16, kernel="chunked", pad_token_id=pattern.PAD,
                                        eos_token_id=pattern.EOS, bos_token_id=pattern.EOS))


def pretrain(out: str | Path, steps: int = 1500, seed: int = 0, progress: bool = True, **shape: Any) -> dict[str, Any]:
    from tts.learn.rwkv7 import pattern

    model = build(seed, **shape)
    t0 = time.perf_counter()
    losses = pattern.pretrain(model, steps, seed=seed, progress=progress)
    out = Path(out)
    model.save_pretrained(out)
    pattern.tokenizer(out)
    card = {"task": "pattern (in-context lookup of random permutation tables)", "steps": steps, "seed": seed,
            "final_loss": sum(losses[-20:]) / min(20, len(losses)), "seconds": round(time.perf_counter() - t0, 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "in_context_accuracy": references(model, 0)["table_prefix"]}
    (out / "rwkv7_card.json").write_text(json.dumps(card, indent=1))
    return card


@torch.no_grad()
def references(model: Any, rule_seed: int, batches: int = 8, seed: int = 77) -> dict[str, float]:
    """Accuracy on the hidden rule with the zero state (no table) and with the table as a prefix."""
    from tts.learn.rwkv7 import pattern

    perm, rng = pattern.secret(rule_seed), random.Random(seed)
    zero = prefix = 0.0
    for _ in range(batches):
        r = pattern.rows(rng, 32, 16, perm, table=False)
        zero += pattern.accuracy(model(input_ids=r.input_ids).logits, r)
        t = pattern.rows(rng, 32, 16, perm, table=True)
        prefix += pattern.accuracy(model(input_ids=t.input_ids).logits, t)
    return {"zero_state": zero / batches, "table_prefix": prefix / batches}


def tune(model: Any, rule_seed: int = 1234, steps: int = 150, lr: float = 1.0, seed: int = 0,
         progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """Tune S0 on table-free sequences of the hidden rule; loss and accuracy against both references."""
    from tts.learn.rwkv7 import pattern
    from tts.learn.rwkv7.state_tuning import StateTuner, TuneSettings

    perm, rng = pattern.secret(rule_seed), random.Random(seed)
    train = [(r.input_ids, r.labels) for r in (pattern.rows(rng, 16, 16, perm, table=False) for _ in range(8))]
    held = [pattern.rows(random.Random(77 + i), 32, 16, perm, table=False) for i in range(8)]
    tuner = StateTuner(model)
    zero_loss = tuner.evaluate([(r.input_ids, r.labels) for r in held])
    t0 = time.perf_counter()
    tuner.fit(train, TuneSettings(steps=steps, lr=lr), progress=progress)
    tuned_loss = tuner.evaluate([(r.input_ids, r.labels) for r in held])
    with torch.no_grad():
        acc = sum(pattern.accuracy(model(input_ids=r.input_ids, past_key_values=tuner.state(32)).logits, r)
                  for r in held) / len(held)
    ref = references(model, rule_seed)
    return tuner, {"rule_seed": rule_seed, "steps": steps, "seconds": round(time.perf_counter() - t0, 1),
                   "zero_state_loss": zero_loss, "tuned_loss": tuned_loss, "loss_ratio": tuned_loss / zero_loss,
                   "tuned_accuracy": acc, **ref, "chance": pattern.CHANCE,
                   "share_of_prefix": acc / ref["table_prefix"] if ref["table_prefix"] else None}
