"""tts self-consistency vs its_hub's, against the same local vLLM server, same prompts, n and
max tokens, in one run. Also a plain async client with everything in flight (the engine's ceiling).

Prints completion tokens per second for each and the ratios:
  tts / its_hub at its_hub's default concurrency (32 requests in flight)   target >= 1.3
  tts / its_hub at matched concurrency (both unlimited)                     target >= 1.0
  tts / plain client                                                        target >= 0.95
(tts asks for per-token log-probs, which confidence selectors use; `tts_no_logprobs` does not,
as the plain client and its_hub do not.)
Needs a venv with `its-hub[lm]==1.2.0` (--its-python). Uses 127.0.0.1, not localhost (its_hub
hangs on localhost past ~38 queued samples). The toy model is served with a pass-through chat
template, since its_hub speaks only the chat API.
Usage: python benchmarks/vs_its_hub.py --its-python /tmp/itsvenv/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def its_hub(python: str, endpoint: str, prompts: list[str], n: int, tokens: int, concurrency: int | None) -> dict:
    cfg = {"endpoint": endpoint, "model": "toy", "prompts": prompts, "n": n, "max_tokens": tokens,
           "concurrency": concurrency}
    worker = Path(__file__).with_name("its_hub_worker.py")
    out = subprocess.run([python, str(worker), json.dumps(cfg)], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


async def through_tts(endpoint: str, prompt_ids: list[list[int]], n: int, tokens: int, logprobs: bool = True) -> dict:
    from tts.backends.openai_server import OpenAIBackend
    from tts.strategies.aggregators import Majority
    from tts.types import Candidate, Sampling

    backend = OpenAIBackend("toy:default", base_url=endpoint, served_name="toy", max_concurrency=1024)
    await backend.start()
    extract = lambda text: text.rsplit("#", 1)[-1] if "#" in text else None  # noqa: E731

    async def one(i: int, ids: list[int]) -> int:
        gen = await backend.generate(ids, Sampling(n=n, temperature=1.0, max_tokens=tokens, seed=i, logprobs=logprobs))
        cands = [Candidate("p", k, "policy", None, c.token_ids, c.text, extract(c.text)) for k, c in enumerate(gen.completions)]
        Majority().winners(cands)
        return gen.completion_tokens

    t0 = time.perf_counter()
    made = await asyncio.gather(*(one(i, ids) for i, ids in enumerate(prompt_ids)))
    seconds = time.perf_counter() - t0
    await backend.close()
    return {"seconds": seconds, "completion_tokens": sum(made)}


async def plain(endpoint: str, prompts: list[str], n: int, tokens: int) -> dict:
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(p: str) -> int:
            r = await client.post(endpoint + "/chat/completions", json={
                "model": "toy", "messages": [{"role": "user", "content": p}], "n": n, "max_tokens": tokens,
                "temperature": 1.0})
            return r.json()["usage"]["completion_tokens"]

        t0 = time.perf_counter()
        made = await asyncio.gather(*(one(p) for p in prompts))
        return {"seconds": time.perf_counter() - t0, "completion_tokens": sum(made)}


def rate(r: dict) -> float:
    return r["completion_tokens"] / r["seconds"]


def main(args: argparse.Namespace) -> dict:
    from tts.evals.benchmarks import ToyArithmetic
    from tts.backends.serve import VLLMServer
    from tts.toy import DEFAULT_MODEL
    from transformers import AutoTokenizer

    template = Path(tempfile.mkdtemp()) / "passthrough.jinja"
    template.write_text(TEMPLATE)
    prompts = [p.problem + ";" for p in ToyArithmetic(count=args.prompts).load()]
    tok = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    prompt_ids = [tok.encode(p, add_special_tokens=False) for p in prompts]  # what the chat path feeds
    server = VLLMServer(str(DEFAULT_MODEL), chat_template=str(template)).start()
    try:
        endpoint = server.url
        # Warm every request shape first: the server's first log-prob request pays a one-time cost.
        asyncio.run(plain(endpoint, prompts[:2], 2, 4))
        asyncio.run(through_tts(endpoint, prompt_ids[:2], 2, 4))
        clients = {
            "its_hub_default": lambda: its_hub(args.its_python, endpoint, prompts, args.n, args.tokens, None),
            "its_hub_unlimited": lambda: its_hub(args.its_python, endpoint, prompts, args.n, args.tokens, -1),
            "tts": lambda: asyncio.run(through_tts(endpoint, prompt_ids, args.n, args.tokens)),
            "tts_no_logprobs": lambda: asyncio.run(through_tts(endpoint, prompt_ids, args.n, args.tokens, False)),
            "plain_client": lambda: asyncio.run(plain(endpoint, prompts, args.n, args.tokens)),
        }
        runs: dict = {}
        for _ in range(args.repeats):  # alternate clients; keep each one's fastest run
            for name, client in clients.items():
                r = client()
                if name not in runs or rate(r) > rate(runs[name]):
                    runs[name] = r
    finally:
        server.kill()
    result = {"prompts": args.prompts, "n": args.n, "max_tokens": args.tokens, "repeats": args.repeats,
              "tok_per_s": {k: round(rate(v)) for k, v in runs.items()}, "runs": runs,
              "tts_vs_its_hub_default": round(rate(runs["tts"]) / rate(runs["its_hub_default"]), 3),
              "tts_vs_its_hub_matched": round(rate(runs["tts"]) / rate(runs["its_hub_unlimited"]), 3),
              "tts_vs_plain_client": round(rate(runs["tts"]) / rate(runs["plain_client"]), 3),
              "tts_no_logprobs_vs_plain_client": round(rate(runs["tts_no_logprobs"]) / rate(runs["plain_client"]), 3)}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--its-python", default="/tmp/itsvenv/bin/python")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    main(ap.parse_args())
