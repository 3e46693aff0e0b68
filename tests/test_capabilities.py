"""`Capabilities` is truthful and the only gate: on each backend every declared capability is
exercised on a real engine, and every undeclared extension refuses in one line (CapabilityError)."""

from __future__ import annotations

import pytest

from tts.backends.openai_server import OpenAIBackend
from tts.types import CapabilityError, RequestState, Sampling

EXTENSIONS = ("lora", "lease", "request_state")


async def exercise(backend, lora_dir) -> set[str]:
    """Use each capability the backend declares; return the ones exercised."""
    caps, done = backend.capabilities, set()
    ids = backend.tokenizer.encode("18+36-30;")
    s = Sampling(n=1, max_tokens=4, temperature=1.0, seed=5)
    if caps.token_prompts:
        gen = await backend.generate(ids + ids[:2], s)  # arbitrary ids, a continuation included
        assert len(gen.completions[0].token_ids) == 4
        done |= {"generation", "token_prompts"}  # text-only APIs generate against a server: test_openai_backend
    if caps.streaming:
        deltas = [d async for d in backend.stream(ids, s)]
        assert sum(len(d.token_ids) for d in deltas) == 4
        done.add("streaming")
    if caps.scoring:
        assert len(await backend.score(ids[:3], ids[3:6])) == 3
        done.add("scoring")
    if caps.lora:
        await backend.add_lora("cap", str(lora_dir))
        await backend.generate(ids, s.replace(extra={"lora": "cap"}))
        await backend.remove_lora("cap")
        done.add("lora")
    if caps.lease:
        async with backend.lease() as model:
            assert any(p.requires_grad for p in model.parameters()) == caps.gradients
        done.add("lease")
    if caps.gradients:
        done.add("gradients")  # checked with the lease: the leased model's parameters take gradients
    if caps.classify:
        rows = await backend.classify(ids)
        assert rows and all(isinstance(x, float) for x in (rows if isinstance(rows[0], float) else rows[0]))
        done.add("classify")
    if caps.request_state:
        seen = Watch()
        gen = await backend.generate_with_state(ids, s.replace(n=2), seen)
        assert [len(c.token_ids) for c in gen.completions] == [4, 4] and seen.rows == [0] and seen.forwards >= 4
        done.add("request_state")
    return done


class Watch(RequestState):
    """A request state that only watches: which rows began and how many forward passes it saw."""

    def __init__(self) -> None:
        self.rows, self.forwards = [], 0

    def begin_row(self, model, prompt_ids, row):
        self.rows.append(row)

    def forward(self, model, inputs):
        self.forwards += 1
        return model(**inputs)


async def refuses_undeclared(backend) -> None:
    caps = backend.capabilities
    if not caps.lora:
        with pytest.raises(CapabilityError, match=r"^backend '[^']+' lacks lora") as err:
            await backend.add_lora("x", "/nowhere")
        assert "\n" not in str(err.value)
    if not caps.lease:
        with pytest.raises(CapabilityError, match=r"^backend '[^']+' lacks lease"):
            async with backend.lease():
                pass
    if not caps.generation:
        with pytest.raises(CapabilityError, match=r"^backend '[^']+' lacks generation"):
            await backend.generate([1, 2], Sampling(max_tokens=2))
    if not caps.scoring:
        with pytest.raises(CapabilityError, match=r"^backend '[^']+' lacks scoring"):
            await backend.score([1, 2], [3])
    if not caps.classify:
        with pytest.raises(CapabilityError, match=r"^backend '[^']+' lacks classify"):
            await backend.classify([1, 2])
    if not caps.request_state:
        with pytest.raises(CapabilityError, match=r"^backend '[^']+' lacks request_state"):
            await backend.generate_with_state([1, 2], Sampling(max_tokens=2), RequestState())


async def test_hf_declares_what_it_does(toy_hf, toy_lora_dir):
    done = await exercise(toy_hf, toy_lora_dir)
    assert done == {"generation", "token_prompts", "streaming", "scoring", "lease", "gradients", "request_state"}
    await refuses_undeclared(toy_hf)


async def test_vllm_declares_what_it_does(vllm_toy_lora, toy_lora_dir):
    done = await exercise(vllm_toy_lora, toy_lora_dir)
    assert done == {"generation", "token_prompts", "streaming", "scoring", "lora"}
    await refuses_undeclared(vllm_toy_lora)


async def test_reward_heads_declare_what_they_do(tmp_path):
    """A classification head (`hf_head`, or vLLM with `head:`) classifies and refuses to generate,
    stream or score in one line; nothing but `classify` is declared."""
    from tinymodel import build_tiny_head
    from tts.backends.hf_head import HFHeadBackend
    from tts.backends.vllm import VLLMBackend

    head = HFHeadBackend(str(build_tiny_head(tmp_path / "rm", "sequence", 1)))
    await head.start()
    try:
        assert await exercise(head, None) == {"classify"}
        await refuses_undeclared(head)
    finally:
        await head.close()
    pooled = VLLMBackend(str(tmp_path / "rm"), head="token")  # refuses before it would start an engine
    assert pooled.capabilities.classify and not pooled.capabilities.generation
    with pytest.raises(CapabilityError, match=r"^backend 'vllm' lacks generation \(it serves a token"):
        await pooled.generate([1, 2], Sampling())


async def test_openai_refuses_what_it_does_not_declare():
    """Chat APIs take no token prompts and score nothing; no openai backend loads adapters or leases
    a model (those need a server: the generate/stream/score paths run against one in test_openai_backend)."""
    chat = OpenAIBackend("toy:default", api="chat", server="generic")
    assert not chat.capabilities.token_prompts and not chat.capabilities.scoring
    await refuses_undeclared(chat)
    with pytest.raises(CapabilityError, match="lacks scoring"):
        await chat.score([1, 2], [3])
    completions = OpenAIBackend("toy:default")
    assert completions.capabilities.scoring and not completions.capabilities.lora
    await refuses_undeclared(completions)


async def test_decoding_under_a_request_state_samples_as_the_backend_does(toy_hf):
    """A request decoded alone under per-request state (how rerouting, PERK and state tuning decode)
    samples with the backend's sampler and seeding: with hooks that change nothing, the same seed and
    settings (top-k, top-p, min_tokens, n) give the batched path's samples, token for token."""
    prompt = toy_hf.tokenizer.encode("18+36-30;")
    s = Sampling(n=3, seed=11, temperature=1.0, top_k=5, top_p=0.9, min_tokens=12, max_tokens=14)
    want = [c.token_ids for c in (await toy_hf.generate(prompt, s)).completions]
    for shared in (True, False):
        state = Watch()
        state.shared_prefill = shared
        got = await toy_hf.generate_with_state(prompt, s, state)
        assert [c.token_ids for c in got.completions] == want and all(len(w) >= 12 for w in want)
        assert state.rows == ([0] if shared else [0, 1, 2])
