"""The synthetic key–value recall task for PERK (spec perk.md, test 6). Vocabulary: specials, 16
document ids, 64 keys, 64 values, 32 filler tokens. An episode is m = 8 facts, each its own segment
`doc <id> : k v <eos>`, plus 8 filler segments of random tokens; the questions are `<bos> k ?` with
answer `v`. Facts are drawn afresh per episode, so without reading the context the answer is
unknowable (chance 1/64). Also: a tiny GPT-2 base pre-trained on the format (fact segments and
in-context questions), which the in-context baseline uses as is."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from tts.learn.perk import Batch

PAD, BOS, EOS, DOC, COLON, ASK = 0, 1, 2, 3, 4, 5
DOC_IDS = list(range(6, 22))
KEYS = list(range(22, 86))
VALUES = list(range(86, 150))
FILLER = list(range(150, 182))
VOCAB = 182
CHANCE = 1 / len(VALUES)
# token strings, so the task reads as text: `doc d3 : k12 v40 <eos>`, question `doc ? : k12`
NAMES = (["<pad>", "<bos>", "<eos>", "doc", ":", "?"] + [f"d{i}" for i in range(len(DOC_IDS))]
         + [f"k{i}" for i in range(len(KEYS))] + [f"v{i}" for i in range(len(VALUES))]
         + [f"f{i}" for i in range(len(FILLER))])


@dataclass
class Episode:
    facts: list[tuple[int, int]]
    fillers: list[list[int]]
    order: list[int]  # segment order (facts are 0..m-1, fillers m..)
    doc_ids: list[int]

    def segments(self) -> list[list[int]]:
        bodies = [[k, v] for k, v in self.facts] + self.fillers
        return [[DOC, self.doc_ids[pos], COLON, *bodies[i], EOS] for pos, i in enumerate(self.order)]

    def context(self) -> Batch:
        """One row per segment; the `doc <id> :` prefix is unlabelled."""
        return Batch.from_rows([(s, [-100, -100, -100, *s[3:]]) for s in self.segments()], PAD)

    def questions(self) -> Batch:
        """`doc ? : k` -> `v`: the segment format with an unknown document id."""
        return Batch.from_rows([([DOC, ASK, COLON, k, v, EOS], [-100, -100, -100, -100, v, EOS]) for k, v in self.facts],
                               PAD)

    def in_context(self) -> Batch:
        """The baseline: every segment in the prompt, then the question."""
        prefix = [t for s in self.segments() for t in s]
        return Batch.from_rows([([*prefix, DOC, ASK, COLON, k, v], [-100] * (len(prefix) + 4) + [v])
                                for k, v in self.facts], PAD)


def tokenizer(out=None):
    """A word-level tokenizer whose ids are the task's ids (saved to `out` when given)."""
    from tts.learn.vocab import word_tokenizer

    return word_tokenizer(NAMES, out, bos="<bos>")


def text(ids: list[int]) -> str:
    return " ".join(NAMES[i] for i in ids)


def episode(rng: random.Random, facts: int = 8, fillers: int = 8, shuffle_ids: bool = True) -> Episode:
    keys = rng.sample(KEYS, facts)
    pairs = [(k, rng.choice(VALUES)) for k in keys]
    noise = [[rng.choice(FILLER) for _ in range(rng.randint(2, 3))] for _ in range(fillers)]
    order = list(range(facts + fillers))
    rng.shuffle(order)
    ids = rng.sample(DOC_IDS, facts + fillers) if shuffle_ids else DOC_IDS[: facts + fillers]
    return Episode(pairs, noise, order, ids)


def answer_accuracy(logits: torch.Tensor, batch: Batch) -> float:
    """Share of questions whose most likely next token at `?` is the right value (whole vocabulary)."""
    pos = (batch.labels != -100).float().argmax(dim=1) - 1  # the position predicting the answer
    pred = logits[torch.arange(logits.shape[0]), pos].argmax(-1)
    gold = batch.labels[torch.arange(logits.shape[0]), pos + 1]
    return float((pred == gold).float().mean())


def tiny_gpt2(seed: int = 0, width: int = 64, layers: int = 2, heads: int = 4):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_embd=width, n_layer=layers, n_head=heads, n_positions=256,
                        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, loss_type="ForCausalLM")
    config._attn_implementation = "eager"  # second-order gradients: CPU SDPA has no double backward
    return GPT2LMHeadModel(config)


def pretrain_base(model, steps: int = 600, batch: int = 32, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Teach the base the format: fact/filler segments (language modelling) and in-context
    questions over a few facts (so the in-context baseline can answer). Returns the losses."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    losses = []
    for step in range(steps):
        rows = []
        for _ in range(batch):
            ep = episode(rng, facts=rng.randint(1, 8), fillers=rng.randint(0, 8))
            if rng.random() < 0.5:
                seg = rng.choice(ep.segments())
                rows.append((seg, [-100, -100, -100, *seg[3:]]))
            else:
                b = ep.in_context()
                i = rng.randrange(b.input_ids.shape[0])
                n = int(b.attention_mask[i].sum())
                rows.append((b.input_ids[i, :n].tolist(), b.labels[i, :n].tolist()))
        bb = Batch.from_rows(rows, PAD)
        out = model(input_ids=bb.input_ids, attention_mask=bb.attention_mask, labels=bb.labels)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(out.loss.detach()))
    model.eval()
    return losses
