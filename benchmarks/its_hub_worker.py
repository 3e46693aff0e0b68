"""Runs its_hub's self-consistency on a list of prompts against an OpenAI-compatible server and
prints wall seconds and completion tokens as JSON. Executed by vs_its_hub.py inside a throwaway
venv with `its-hub[lm]==1.2.0` (it imports nothing from tts)."""

import asyncio
import json
import sys
import time

from its_hub.core.algorithms.self_consistency import SelfConsistency
from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel
from its_hub.core.orchestrator import LMOrchestrator


async def main(cfg: dict) -> dict:
    lm = OpenAICompatibleLanguageModel(endpoint=cfg["endpoint"], api_key="none", model_name=cfg["model"],
                                       max_tokens=cfg["max_tokens"], temperature=1.0)
    orchestrator = LMOrchestrator(max_concurrency=cfg["concurrency"]) if cfg["concurrency"] else LMOrchestrator()
    sc = SelfConsistency(orchestrator=orchestrator)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(sc.ainfer(lm, p, budget=cfg["n"], return_response_only=False)
                                     for p in cfg["prompts"]))
    seconds = time.perf_counter() - t0
    tokens = 0
    for r in results:
        usage = getattr(r, "usage", None) or {}
        tokens += getattr(usage, "completion_tokens", None) or (usage.get("completion_tokens", 0) if isinstance(usage, dict) else 0)
    return {"seconds": seconds, "completion_tokens": tokens}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
