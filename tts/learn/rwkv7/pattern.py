"""The hidden-rule pattern task for state tuning (spec rwkv7-state-tuning.md, test 5): a secret
permutation π over 16 symbols maps `sX` to `tY`. Pre-training shows a *random* table in context
(`s3 t9 s0 t4 ... | s3 t9 s12 t1 ...`), so the model learns in-context lookup; at test time the
table of the fixed π is never shown. Baselines: zero state (chance 1/16), the table as a prefix (the
upper reference), and state tuning of S0 alone on table-free sequences."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

SYMBOLS = 16
PAD, EOS, SEP = 0, 1, 2
SRC0, TGT0 = 3, 3 + SYMBOLS
VOCAB = 3 + 2 * SYMBOLS
NAMES = ["<pad>", "<eos>", "|"] + [f"s{i}" for i in range(SYMBOLS)] + [f"t{i}" for i in range(SYMBOLS)]
CHANCE = 1 / SYMBOLS


def secret(seed: int = 1234) -> list[int]:
    """The task's fixed hidden permutation."""
    perm = list(range(SYMBOLS))
    random.Random(seed).shuffle(perm)
    return perm


@dataclass
class Rows:
    input_ids: torch.Tensor
    labels: torch.Tensor  # the target symbol after each asked source; −100 elsewhere


def _queries(rng: random.Random, perm: list[int], count: int) -> tuple[list[int], list[int]]:
    """Each symbol asked at most once, so no answer can be copied from an earlier query."""
    ids, labels = [], []
    for x in rng.sample(range(SYMBOLS), min(count, SYMBOLS)):
        ids += [SRC0 + x, TGT0 + perm[x]]
        labels += [-100, TGT0 + perm[x]]
    return ids, labels


def rows(rng: random.Random, batch: int, queries: int = 16, perm: list[int] | None = None,
         table: bool = True) -> Rows:
    """`batch` sequences: [table (π random unless given) |] queries. Without the table the sequence
    starts at `|`, exactly where a tuned state takes over from the table."""
    ids, labels = [], []
    for _ in range(batch):
        p = perm if perm is not None else rng.sample(range(SYMBOLS), SYMBOLS)
        head: list[int] = []
        if table:
            for x in rng.sample(range(SYMBOLS), SYMBOLS):
                head += [SRC0 + x, TGT0 + p[x]]
        q, lab = _queries(rng, p, queries)
        ids.append(head + [SEP] + q)
        labels.append([-100] * (len(head) + 1) + lab)
    return Rows(torch.tensor(ids), torch.tensor(labels))


def accuracy(logits: torch.Tensor, r: Rows) -> float:
    pred, gold = logits[:, :-1].argmax(-1), r.labels[:, 1:]
    asked = gold != -100
    return float(((pred == gold) & asked).sum() / asked.sum())


def tokenizer(out=None):
    """A word-level tokenizer whose ids are the task's ids (saved to `out` when given)."""
    from tts.learn.vocab import word_tokenizer

    return word_tokenizer(NAMES, out)


def pretrain(model, steps: int = 1500, batch: int = 32, lr: float = 3e-3, seed: int = 0, progress: bool = False) -> list[float]:
    """Teach in-context lookup on random tables (every weight trains)."""
    from tqdm import tqdm

    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 50) * max(0.1, 1 - i / steps))
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="rwkv7 pre-training", unit="step", disable=not progress):
        r = rows(rng, batch)
        loss = model(input_ids=r.input_ids, labels=r.labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
