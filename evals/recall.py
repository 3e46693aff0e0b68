"""`kv_recall`: the synthetic key–value recall task of PERK (tts.learn.recall_task) as text problems.
Each episode's 8 facts (`k12 v40`) and 8 filler segments form `meta["context"]` (a list of segments,
in the episode's order); each fact is asked once as `doc ? : k12`, answer `v40`. With no context the
answer is unknowable (chance 1/64). The `perk` generator's `prefix: "doc d{i} :"` reproduces the
training format exactly."""

from __future__ import annotations

import random

from tts.types import Problem


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
