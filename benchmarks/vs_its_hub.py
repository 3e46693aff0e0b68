"""tts self-consistency through the product path (`tts run RECIPE` on the `openai` backend, the
controller, extraction, grading and records) against its_hub 1.2.0's, on the same local vLLM server,
same prompts, n and max tokens, in one run; and a plain async client with everything in flight
(the engine's ceiling). Both request shapes: n samples in one request (tts's default) and one
request per sample (its_hub's only shape; tts with `split_n: true`).

Ratios of completion tokens per second (targets from issue 19):
  tts default / its_hub default (each at its defaults; its_hub: 32 requests in flight)  >= 1.3
  tts per sample, all in flight / its_hub unlimited (all in flight)                    >= 1.0
  tts / plain client, each shape, all in flight                                        >= 0.95
tts's time is the run's own wall time less backend start (summary.json), as its_hub's excludes
its imports and client set-up. Neither side asks for log-probs (majority needs none).
Needs a venv with `its-hub[lm]==1.2.0` (--its-python). Uses 127.0.0.1, not localhost (its_hub
hangs on localhost past ~38 queued samples). The toy model is served with a pass-through chat
template, since its_hub speaks only the chat API; SmolLM2 with its own.
Usage: python benchmarks/vs_its_hub.py --model toy --its-python /tmp/itsvenv/bin/python
       [--prompts 128 --n 16 --tokens 64 --repeats 3 --out benchmarks/results/vs_its_hub_toy_cpu.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write  # noqa: E402
from tts_cli import tts  # noqa: E402

# The toy tokenizer starts every prompt with <bos>; a chat request is tokenized without special
# tokens, so the template adds it: both sides then send the same prompt tokens.
TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
# its_hub's "unlimited" orchestrator opens one aiohttp session per problem (each holding up to 100
# connections), so with n <= 100 every request of a run is in flight at once: the "all in flight"
# configurations send everything at once too (tts: max_concurrency = problems x n).
# model -> what the server loads, the served name, the prompt the recipe renders, chat or not
MODELS = {
    "toy": {"model": "toy:default", "n_ops": 2, "template": "{problem};", "chat": False},
    "smollm2": {"model": "pypi:smollm2-135m-instruct", "n_ops": 1, "template": "What is {problem}?", "chat": True,
                "max_model_len": 512},
}


def prompts_of(spec: dict, count: int) -> list[str]:
    """The user messages both sides send: the recipe's template applied to the same problems."""
    from tts.evals.benchmarks import ToyArithmetic

    return [spec["template"].format(problem=p.problem) for p in ToyArithmetic(count=count, n_ops=spec["n_ops"]).load()]


def its_hub(python: str, endpoint: str, served: str, prompts: list[str], n: int, tokens: int,
            concurrency: int | None) -> dict:
    cfg = {"endpoint": endpoint, "model": served, "prompts": prompts, "n": n, "max_tokens": tokens,
           "concurrency": concurrency}
    worker = Path(__file__).with_name("its_hub_worker.py")
    out = subprocess.run([python, str(worker), json.dumps(cfg)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# tts configurations: its defaults (16 problems in flight, up to 64 requests per endpoint, n in
# one request), and everything in flight in each request shape (what its_hub unlimited and the
# plain client do), so a ratio against them compares clients, not how much each holds back.
SHAPES = {"default": {}, "n_in_one": {"split_n": False}, "per_sample": {"split_n": True}}


def recipe_for(spec: dict, endpoint: str, served: str, count: int, n: int, tokens: int, shape: str) -> dict:
    """The self-consistency recipe a user would write for this server (majority, no selectors), in
    one of SHAPES."""
    engine = {"base_url": endpoint, "served_name": served, **SHAPES[shape]}
    if shape != "default":
        engine["max_concurrency"] = count * n
    recipe = {
        "name": "vs-its-hub", "seed": 0, "dataset": {"name": "toy_arith", "count": count, "n_ops": spec["n_ops"]},
        "roles": {"policy": {"backend": "openai", "model": spec["model"], "engine": engine,
                             "sampling": {"temperature": 1.0, "max_tokens": tokens, "logprobs": False}}},
        "prompt": {"template": spec["template"], "chat": spec["chat"]},
        "strategy": {"generator": {"name": "sample", "role": "policy"}, "aggregator": "majority", "n": n},
        "extractor": "last_number", "grader": "exact",
    }
    if shape != "default":
        recipe["concurrency"] = count
    return recipe


def through_tts(recipe: dict, folder: Path) -> dict:
    """`tts run` in its own process into a fresh folder (the same folder would resume the finished
    run and report its time again); the run's wall time less backend start, and its token counts."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    out = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    path.write_text(yaml.safe_dump(recipe))
    tts("run", str(path), "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    role = summary["cost_by_role"]["policy"]
    return {"seconds": summary["wall_seconds_this_run"] - summary["start_seconds_this_run"],
            "completion_tokens": role["completion_tokens"], "prompt_tokens": role["prompt_tokens"],
            "accuracy": summary["accuracy"]["mean"] if isinstance(summary["accuracy"], dict) else summary["accuracy"]}


async def plain(endpoint: str, served: str, prompts: list[str], n: int, tokens: int, split: bool) -> dict:
    """A bare aiohttp client on the chat API, every request submitted and on the wire at once."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=1800)) as client:
        async def one(p: str, k: int) -> int:
            body = {"model": served, "messages": [{"role": "user", "content": p}], "n": k, "max_tokens": tokens,
                    "temperature": 1.0}
            async with client.post(endpoint + "/chat/completions", json=body) as r:
                return (await r.json())["usage"]["completion_tokens"]

        shape = [(p, 1) for p in prompts for _ in range(n)] if split else [(p, n) for p in prompts]
        t0 = time.perf_counter()
        made = await asyncio.gather(*(one(p, k) for p, k in shape))
        return {"seconds": time.perf_counter() - t0, "completion_tokens": sum(made)}


def rate(r: dict) -> float:
    return r["completion_tokens"] / r["seconds"]


def serve(name: str, spec: dict, log: Path):
    from tts.backends.models import resolve_model
    from tts.backends.serve import VLLMServer

    path, _ = resolve_model(spec["model"])
    template = None
    if not spec["chat"]:
        template = log.parent / "passthrough.jinja"
        template.write_text(TEMPLATE)
    return VLLMServer(str(path), served_name=name, chat_template=str(template) if template else None,
                      max_model_len=spec.get("max_model_len", 128), log=log).start()


def main(args: argparse.Namespace) -> dict:
    spec = MODELS[args.model]
    work = Path(tempfile.mkdtemp(prefix="vs-its-hub-"))
    prompts = prompts_of(spec, args.prompts)
    server = serve(args.model, spec, work / "vllm.log")
    endpoint, served, n, tokens = server.url, args.model, args.n, args.tokens
    try:
        # Warm every request shape first (the first requests of a fresh server pay one-time costs).
        asyncio.run(plain(endpoint, served, prompts[:2], 2, 4, False))
        asyncio.run(plain(endpoint, served, prompts[:2], 2, 4, True))
        through_tts(recipe_for(spec, endpoint, served, 2, 2, 4, "default"), work / "warm")
        clients = {
            "its_hub_default": lambda: its_hub(args.its_python, endpoint, served, prompts, n, tokens, None),
            "its_hub_unlimited": lambda: its_hub(args.its_python, endpoint, served, prompts, n, tokens, -1),
            **{f"tts_{shape}": (lambda shape=shape: through_tts(
                recipe_for(spec, endpoint, served, args.prompts, n, tokens, shape), work / f"tts_{shape}"))
               for shape in SHAPES},
            "plain_n_in_one": lambda: asyncio.run(plain(endpoint, served, prompts, n, tokens, False)),
            "plain_per_sample": lambda: asyncio.run(plain(endpoint, served, prompts, n, tokens, True)),
        }
        raw: dict = {name: [] for name in clients}
        for _ in range(args.repeats):  # alternate clients; report each one's fastest run
            for name, client in clients.items():
                raw[name].append(client())
                print(name, round(rate(raw[name][-1])), "tok/s", flush=True)
    finally:
        server.kill()
    best = {k: max(v, key=rate) for k, v in raw.items()}
    tps = {k: round(rate(v)) for k, v in best.items()}

    def ratio(a: str, b: str) -> float:
        return round(rate(best[a]) / rate(best[b]), 3)

    result = {"model": spec["model"], "prompts": args.prompts, "n": n, "max_tokens": tokens, "repeats": args.repeats,
              "tok_per_s": tps, "runs": raw,
              "ratios": {"tts_default_vs_its_hub_default": ratio("tts_default", "its_hub_default"),
                         "tts_per_sample_vs_its_hub_unlimited": ratio("tts_per_sample", "its_hub_unlimited"),
                         "tts_n_in_one_vs_plain_n_in_one": ratio("tts_n_in_one", "plain_n_in_one"),
                         "tts_per_sample_vs_plain_per_sample": ratio("tts_per_sample", "plain_per_sample")},
              "targets": {"tts_default_vs_its_hub_default": 1.3, "tts_per_sample_vs_its_hub_unlimited": 1.0,
                          "tts_n_in_one_vs_plain_n_in_one": 0.95, "tts_per_sample_vs_plain_per_sample": 0.95}}
    print(json.dumps({k: result[k] for k in ("tok_per_s", "ratios")}, indent=2))
    if args.out:
        print(f"wrote {write(args.out, result)}")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="toy")
    ap.add_argument("--its-python", default="/tmp/itsvenv/bin/python")
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="results file (e.g. benchmarks/results/vs_its_hub_toy_cpu.json)")
    main(ap.parse_args())
