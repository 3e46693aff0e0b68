"""Text datasets for the test-time-learning toys, so their methods run from recipes:

- `kv_recall`: PERK's key–value recall (tts.learn.recall_task) as text problems: each episode's 8 facts
  (`k12 v40`) and 8 filler segments form `meta["context"]` (a list, in the episode's order); each fact is
  asked once as `doc ? : k12`, answer `v40`. With no context the answer is unknowable (chance 1/64); the
  `perk` generator's `prefix: "doc d{i} :"` reproduces the training format exactly.
- `lact_recall`: 32 key→value pairs (`k12 v40 ...`, one 64-token chunk) then one asked key; answer its
  value. Only pairs farther back than `window` tokens are asked (default 32, the packaged models'
  attention window), so attention alone cannot answer (tts.learn.lact.recall).
- `hidden_rule`: `| s5` → `t9` under a fixed secret permutation (tts.learn.rwkv7.pattern); every
  problem carries the same `examples` (table-free sequences of the rule) for `state_tuning`, and the
  table itself in `meta["table"]` (the in-prefix reference)."""

from __future__ import annotations

import random

from tts.types import Problem


class LaCTRecall:
    name = "lact_recall"

    def __init__(self, count: int = 200, seed: int = 20261127, pairs: int = 32, window: int = 32) -> None:
        if count < 1 or not 1 <= pairs <= 64 or not 0 <= window < 2 * pairs:
            raise ValueError("lact_recall needs count >= 1, 1 <= pairs <= 64 and 0 <= window < 2 * pairs")
        self.count, self.seed, self.pairs, self.window = count, seed, pairs, window

    def load(self) -> list[Problem]:
        from tts.learn.lact import recall

        rng, out = random.Random(self.seed), []
        for i in range(self.count):
            keys = rng.sample(range(recall.KEYS), self.pairs)
            values = [rng.randrange(recall.VALUES) for _ in keys]
            j = rng.randrange(self.pairs - self.window // 2)  # its key is more than `window` tokens back
            text = " ".join(f"k{k} v{v}" for k, v in zip(keys, values)) + f" k{keys[j]}"
            out.append(Problem(f"recall-{i}", text, f"v{values[j]}",
                               {"kind": "lact_recall", "distance": 2 * (self.pairs - j)}))
        return out


class HiddenRule:
    name = "hidden_rule"

    def __init__(self, rule_seed: int = 1234, examples: int = 8, seed: int = 0) -> None:
        if examples < 1:
            raise ValueError("hidden_rule needs examples >= 1")
        self.rule_seed, self.examples, self.seed = rule_seed, examples, seed

    def load(self) -> list[Problem]:
        from tts.learn.rwkv7 import pattern

        perm, rng = pattern.secret(self.rule_seed), random.Random(self.seed)
        demos = [" ".join(pattern.NAMES[t] for t in pattern.rows(rng, 1, 16, perm, table=False).input_ids[0].tolist())
                 for _ in range(self.examples)]
        table = " ".join(f"s{x} t{perm[x]}" for x in range(pattern.SYMBOLS))
        return [Problem(f"rule-{x}", f"| s{x}", f"t{perm[x]}", {"kind": "hidden_rule", "examples": demos, "table": table})
                for x in range(pattern.SYMBOLS)]


class KVRecall:
    name = "kv_recall"

    def __init__(self, episodes: int = 50, seed: int = 20261127, facts: int = 8, fillers: int = 8) -> None:
        if episodes < 1 or not 1 <= facts <= 16 or fillers < 0 or facts + fillers > 16:
            raise ValueError("kv_recall needs episodes >= 1, 1 <= facts and facts + fillers <= 16")
        self.episodes, self.seed, self.facts, self.fillers = episodes, seed, facts, fillers

    def load(self) -> list[Problem]:
        from tts.learn import recall_task as task

        rng = random.Random(self.seed)
        out = []
        for e in range(self.episodes):
            ep = task.episode(rng, self.facts, self.fillers, shuffle_ids=False)
            bodies = [[k, v] for k, v in ep.facts] + ep.fillers
            context = [task.text(bodies[i]) for i in ep.order]
            for j, (k, v) in enumerate(ep.facts):
                out.append(Problem(f"kv-{e}-{j}", f"doc ? : {task.text([k])}", task.text([v]),
                                   {"kind": "kv_recall", "episode": e, "context": context}))
        return out
