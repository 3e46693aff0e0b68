"""Multi-query associative recall for LaCT (spec lact.md, test 7): 32 random key→value pairs
(`k12 v40`, 64 tokens = one chunk), then the 32 keys asked again in random order, each followed by
its value. Only the answers are scored. With window 32 most asked pairs lie outside the attention
window, so only the fast-weight memory (written when the pairs' chunk ends) can answer them;
chance is 1/64."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

KEYS, VALUES = 64, 64
PAD, EOS = 0, 1
KEY0, VALUE0 = 2, 2 + KEYS
VOCAB = 2 + KEYS + VALUES
NAMES = ["<pad>", "<eos>"] + [f"k{i}" for i in range(KEYS)] + [f"v{i}" for i in range(VALUES)]
CHANCE = 1 / VALUES


@dataclass
class RecallBatch:
    input_ids: torch.Tensor  # [B, 4·pairs]
    labels: torch.Tensor  # the value after each asked key; −100 elsewhere
    distance: torch.Tensor  # per position: how far back the asked key's pair starts (−1: not an answer)


def batch(rng: random.Random, size: int, pairs: int = 32) -> RecallBatch:
    ids, labels, dist = [], [], []
    for _ in range(size):
        keys = rng.sample(range(KEYS), pairs)
        values = [rng.randrange(VALUES) for _ in keys]
        seq = [t for k, v in zip(keys, values) for t in (KEY0 + k, VALUE0 + v)]
        lab, far = [-100] * len(seq), [-1] * len(seq)
        for i in rng.sample(range(pairs), pairs):
            pos = len(seq)
            seq += [KEY0 + keys[i], VALUE0 + values[i]]
            lab += [-100, VALUE0 + values[i]]
            far += [-1, pos - 2 * i]  # from the asked key to its pair's key
        ids.append(seq), labels.append(lab), dist.append(far)
    return RecallBatch(torch.tensor(ids), torch.tensor(labels), torch.tensor(dist))


def accuracy(logits: torch.Tensor, b: RecallBatch, window: int) -> dict[str, float]:
    """Answer accuracy over all asked pairs and over those whose pair lies outside the window."""
    pred = logits[:, :-1].argmax(-1)
    gold, far = b.labels[:, 1:], b.distance[:, 1:]
    asked = gold != -100
    right = (pred == gold) & asked
    outside = asked & (far > window)
    return {"all": float(right.sum() / asked.sum()), "outside": float(right[outside].sum() / outside.sum().clamp_min(1)),
            "outside_n": int(outside.sum()), "n": int(asked.sum())}


def tokenizer(out=None):
    """A word-level tokenizer whose ids are the task's ids (saved to `out` when given)."""
    from tts.learn.vocab import word_tokenizer

    return word_tokenizer(NAMES, out)