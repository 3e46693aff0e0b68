"""Overhead of tts on the vllm backend, measured in one run on one engine.

(a) raw vLLM: 16 prompts x n=16 x 64 tokens through `AsyncLLM.generate`, all in flight at once,
    given the prompt text (vLLM tokenizes it, as tts's path must too);
(b) tts: the same prompts and sampling as a recipe run -- `sample` generator + `majority`
    aggregator through the controller, with selectors, grading and fsynced records.
(c) raw vLLM again with the heap frozen (`gc.freeze()`), as tts's controller freezes it while
    problems run: b/c says what tts costs beyond that one trick a careful user could also play.
Every sample makes exactly 64 tokens (min = max tokens). Each path runs `--repeats` times,
alternating, and keeps its best. Prints b/a (target <= 1.05) and b/c. A controller-bound case: many short
problems at N = 1 (`--prompts 1000 --n 1 --tokens 4`, every held-out toy problem), where per-problem work dominates.
Usage: python benchmarks/backend_overhead.py [--model toy:default] [--out RESULTS.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path


def recipe(model: str, problems: int, n: int, tokens: int) -> dict:
    return {
        "name": "overhead", "seed": 0, "dataset": {"name": "toy_arith", "count": problems},
        "roles": {"policy": {"backend": "vllm", "model": model,
                             "sampling": {"temperature": 1.0, "max_tokens": tokens, "min_tokens": tokens}}},
        "prompt": {"template": "{problem};", "chat": False},
        "strategy": {"generator": {"name": "sample", "role": "policy"}, "aggregator": "majority", "n": n},
        "selectors": ["confidence"],  # mean log-probability per candidate: the selectors the docstring claims
        "extractor": {"name": "regex", "pattern": "#(-?\\d+)", "numeric": True}, "grader": "exact",
        "concurrency": problems,
    }


async def raw_frozen(backend, prompts: list[str], n: int, tokens: int) -> tuple[float, float]:
    import gc

    gc.freeze()
    try:
        return await raw(backend, prompts, n, tokens)
    finally:
        gc.unfreeze()


async def raw(backend, prompts: list[str], n: int, tokens: int) -> tuple[float, float]:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    async def one(text: str, seed: int) -> int:
        params = SamplingParams(n=n, temperature=1.0, max_tokens=tokens, min_tokens=tokens, logprobs=0, seed=seed,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        async for out in backend.engine.generate(text, params, uuid.uuid4().hex):
            final = out
        return sum(len(c.token_ids) for c in final.outputs)

    t0, c0 = time.perf_counter(), time.thread_time()
    made = await asyncio.gather(*(one(p, i) for i, p in enumerate(prompts)))
    assert sum(made) == len(prompts) * n * tokens
    return time.perf_counter() - t0, time.thread_time() - c0


async def through_tts(backend, model: str, problems: int, n: int, tokens: int) -> tuple[float, float]:
    from tts.build import build_pieces
    from tts.runner import run_pieces
    from tts.recipe import parse_recipe

    pieces = build_pieces(parse_recipe(recipe(model, problems, n, tokens)))
    pieces.backends = {"shared": backend}  # the same engine as the raw path
    for role in pieces.roles.values():
        role.backend = backend
    t0, c0 = time.perf_counter(), time.thread_time()  # the engine is shared with the raw path: the run leaves it open
    summary = await run_pieces(pieces, Path(tempfile.mkdtemp()) / "run", progress=False, manage_backends=False)
    elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
    assert summary["ok"] == problems
    assert summary["cost_by_role"]["policy"]["completion_tokens"] == problems * n * tokens
    return elapsed, cpu


async def main(args: argparse.Namespace) -> dict:
    from tts.backends.vllm import VLLMBackend
    from tts.toy.task import prompt_text
    from tts.evals.benchmarks import ToyArithmetic

    backend = VLLMBackend(args.model, dtype="float32", max_model_len=128)
    await backend.start()
    prompts = [prompt_text(p.problem) for p in ToyArithmetic(count=args.prompts).load()]
    await raw(backend, prompts[:2], 2, 4)  # warm-up
    runs: dict[str, list[tuple[float, float]]] = {"raw": [], "raw_frozen_heap": [], "tts": []}
    for _ in range(args.repeats):
        runs["raw"].append(await raw(backend, prompts, args.n, args.tokens))
        runs["raw_frozen_heap"].append(await raw_frozen(backend, prompts, args.n, args.tokens))
        runs["tts"].append(await through_tts(backend, args.model, args.prompts, args.n, args.tokens))
    (t_raw, c_raw), (t_frozen, c_frozen), (t_tts, c_tts) = (min(runs[k]) for k in ("raw", "raw_frozen_heap", "tts"))
    await backend.close()
    total = args.prompts * args.n * args.tokens
    result = {"model": args.model, "prompts": args.prompts, "n": args.n, "tokens": args.tokens,
              "repeats": args.repeats, "raw_vllm_s": round(t_raw, 3), "raw_frozen_heap_s": round(t_frozen, 3), "tts_s": round(t_tts, 3),
              "raw_tok_per_s": round(total / t_raw), "tts_tok_per_s": round(total / t_tts),
              "ratio_tts_over_raw": round(t_tts / t_raw, 3),
              "ratio_tts_over_raw_frozen_heap": round(t_tts / t_frozen, 3),
              # main-thread CPU seconds of each path's fastest run (the event loop does all of tts's work)
              "main_thread_cpu_s": {"raw": round(c_raw, 3), "raw_frozen_heap": round(c_frozen, 3), "tts": round(c_tts, 3)},
              "runs": {k: [{"seconds": round(w, 4), "main_thread_cpu_s": round(c, 4)} for w, c in v] for k, v in runs.items()}}
    print(json.dumps(result, indent=2))
    if args.out:
        from provenance import write

        print(f"wrote {write(args.out, {'args': vars(args), 'result': result})}")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="toy:default")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="results file to write, e.g. benchmarks/results/backend_overhead_cpu.json")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    asyncio.run(main(ap.parse_args()))
