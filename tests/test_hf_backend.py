"""The hf backend on a real tiny Llama: logprobs and scores against a direct forward pass,
batch-independence of samples, batching across requests, abort, stops and streaming."""

from __future__ import annotations

import asyncio

import pytest
import torch

from tts.types import Sampling



def prompt_ids(backend, text: str) -> list[int]:
    return backend.tokenizer.encode(text, add_special_tokens=False)


def direct_logprobs(backend, prefix: list[int], continuation: list[int]) -> list[float]:
    with torch.no_grad():
        ids = torch.tensor([prefix + continuation], device=backend.model.device)
        logits = backend.model(ids).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return [lp[len(prefix) - 1 + i, t].item() for i, t in enumerate(continuation)]


async def test_sampled_logprobs_equal_direct_forward(hf_backend):
    ids = prompt_ids(hf_backend, "What is 12 + 7? The answer is")
    gen = await hf_backend.generate(ids, Sampling(n=3, temperature=1.0, max_tokens=10, seed=11))
    for comp in gen.completions:
        assert len(comp.logprobs) == len(comp.token_ids) > 0
        assert comp.logprobs == pytest.approx(direct_logprobs(hf_backend, ids, comp.token_ids), abs=1e-4)


async def test_score_equals_direct_forward(hf_backend):
    ids = prompt_ids(hf_backend, "Step 1: 55-42=13.")
    cont = prompt_ids(hf_backend, " Step 2: 13*3=39")
    scores = await hf_backend.score(ids, cont)
    assert scores == pytest.approx(direct_logprobs(hf_backend, ids, cont), abs=1e-4)
    # Scoring several spans concurrently (one padded prefill) gives the same numbers.
    many = await asyncio.gather(*(hf_backend.score(ids[: 3 + k], cont) for k in range(4)))
    for k, values in enumerate(many):
        assert values == pytest.approx(direct_logprobs(hf_backend, ids[: 3 + k], cont), abs=1e-4)


async def test_sample_independent_of_batch_neighbours(hf_backend):
    ids = prompt_ids(hf_backend, "Compute 3 * 4 then add 5.")
    settings = Sampling(n=2, temperature=0.9, top_p=0.95, top_k=50, max_tokens=14, seed=1234)
    alone = await hf_backend.generate(ids, settings)
    others = [
        hf_backend.generate(prompt_ids(hf_backend, "The quick brown fox" * (k + 1)),
                            Sampling(n=k + 1, temperature=0.5 + 0.2 * k, max_tokens=5 + 3 * k, seed=k))
        for k in range(7)
    ]
    results = await asyncio.gather(*others[:3], hf_backend.generate(ids, settings), *others[3:])
    batched = results[3]
    assert [c.token_ids for c in batched.completions] == [c.token_ids for c in alone.completions]
    assert [c.seed for c in batched.completions] == [1234, 1235]


async def test_concurrent_requests_share_forward_passes(hf_backend):
    before = hf_backend.stats()["forward_passes"]
    reqs = [hf_backend.generate(prompt_ids(hf_backend, f"What is {k} + 7?"),
                                Sampling(n=2, max_tokens=8, seed=k)) for k in range(16)]
    gens = await asyncio.gather(*reqs)
    passes = hf_backend.stats()["forward_passes"] - before
    total_steps = sum(max(len(c.token_ids) for c in g.completions) for g in gens)
    assert passes < len(reqs)  # fewer forward passes than requests
    assert passes < total_steps / 4


async def test_stream_close_aborts_decoding(hf_backend):
    ids = prompt_ids(hf_backend, "Let x be the number of apples.")
    before = hf_backend.stats()["tokens_generated"]
    agen = hf_backend.stream(ids, Sampling(n=1, max_tokens=400, min_tokens=400, seed=5))
    got = []
    async for delta in agen:
        got.append(delta)
        if len(got) == 3:
            break
    await agen.aclose()
    await asyncio.sleep(0.3)  # the worker notices the abort at its next step
    produced = hf_backend.stats()["tokens_generated"] - before
    assert 3 <= produced < 100


async def test_stream_deltas_concatenate_to_generate(hf_backend):
    ids = prompt_ids(hf_backend, "The answer is")
    s = Sampling(n=1, max_tokens=12, seed=77)
    gen = await hf_backend.generate(ids, s)
    deltas = [d async for d in hf_backend.stream(ids, s)]
    assert sum((d.token_ids for d in deltas), []) == gen.completions[0].token_ids
    assert "".join(d.text for d in deltas) == gen.completions[0].text
    assert deltas[-1].finish_reason == gen.completions[0].finish_reason


async def test_min_tokens_stop_tokens_and_stop_strings(hf_backend):
    ids = prompt_ids(hf_backend, "What is 12 + 7?")
    eos = hf_backend.tokenizer.eos_token_id
    gen = await hf_backend.generate(ids, Sampling(n=4, max_tokens=20, min_tokens=20, seed=3))
    for c in gen.completions:
        assert len(c.token_ids) == 20 and eos not in c.token_ids
    # A stop string cuts the text where it first appears; ids keep the tokens produced.
    free = await hf_backend.generate(ids, Sampling(n=1, max_tokens=20, seed=9, temperature=0))
    text = free.completions[0].text
    assert len(text) > 6
    stop = text[3:5]
    cut = await hf_backend.generate(ids, Sampling(n=1, max_tokens=20, seed=9, temperature=0, stop=(stop,)))
    assert cut.completions[0].finish_reason == "stop"
    assert cut.completions[0].text == text[: text.find(stop)]
    kept = await hf_backend.generate(ids, Sampling(n=1, max_tokens=20, temperature=0, stop=(stop,),
                                                   include_stop_str_in_output=True))
    assert kept.completions[0].text == text[: text.find(stop) + len(stop)]


async def test_greedy_is_argmax_and_bad_words_are_avoided(hf_backend):
    ids = prompt_ids(hf_backend, "The quick brown")
    greedy = await hf_backend.generate(ids, Sampling(temperature=0, max_tokens=6))
    first = greedy.completions[0].token_ids[0]
    with torch.no_grad():
        inputs = torch.tensor([ids], device=hf_backend.model.device)
        assert first == int(hf_backend.model(inputs).logits[0, -1].argmax())
    word = hf_backend.tokenizer.decode([first])
    banned = await hf_backend.generate(ids, Sampling(temperature=0, max_tokens=6, bad_words=(word,)))
    assert banned.completions[0].token_ids[0] != first


async def test_bad_prompt_is_one_clear_error(hf_backend):
    with pytest.raises(ValueError, match="token ids"):
        await hf_backend.generate([], Sampling())
    with pytest.raises(ValueError, match="token ids"):
        await hf_backend.generate(["a"], Sampling())  # type: ignore[list-item]


async def test_a_failed_decode_raises_through_generate_and_stream(hf_backend):
    """A token id past the vocabulary makes the model's forward fail inside the decode thread: the
    request gets a typed BackendError (a stream too, instead of ending quietly) and the worker lives on."""
    from tts.backends.base import BackendError

    bad, s = [10**7], Sampling(n=1, max_tokens=4, seed=3)
    with pytest.raises(BackendError, match="decoding failed"):
        await hf_backend.generate(bad, s)
    with pytest.raises(BackendError, match="decoding failed"):
        async for _ in hf_backend.stream(bad, s):
            pass
    after = await hf_backend.generate(prompt_ids(hf_backend, "What is 3 * 4?"), s)
    assert len(after.completions[0].token_ids) == 4


async def test_late_request_joins_running_batch_and_keeps_its_samples(hf_backend):
    long_ids = prompt_ids(hf_backend, "Let x be the number of apples.")
    short_ids = prompt_ids(hf_backend, "What is 3 * 4?")
    short = Sampling(n=2, max_tokens=6, min_tokens=6, seed=21, temperature=0.8)
    alone = await hf_backend.generate(short_ids, short)
    long_task = asyncio.create_task(
        hf_backend.generate(long_ids, Sampling(n=3, max_tokens=400, min_tokens=400, seed=1)))
    await asyncio.sleep(0.1)  # the long request is decoding now
    joined = await hf_backend.generate(short_ids, short)
    assert not long_task.done(), "the late request must not wait for the long one"
    assert [c.token_ids for c in joined.completions] == [c.token_ids for c in alone.completions]
    # A score request is served between decode steps too.
    assert len(await hf_backend.score(short_ids, short_ids[:3])) == 3
    assert not long_task.done()
    long = await long_task
    assert all(len(c.token_ids) == 400 for c in long.completions)


async def test_interleaved_score_and_generate_storm_completes(hf_backend):
    """Score requests arriving while the worker picks a decode batch once killed the worker."""
    ids = prompt_ids(hf_backend, "What is 12 + 7?")
    for round_ in range(6):
        calls = []
        for k in range(12):
            if k % 2:
                calls.append(asyncio.ensure_future(hf_backend.score(ids, ids[: 2 + k % 5])))
            else:
                calls.append(asyncio.ensure_future(
                    hf_backend.generate(ids[: 3 + k % 4], Sampling(n=2, max_tokens=4 + k, seed=k))))
            if k % 3 == 0:
                await asyncio.sleep(0.001)
        results = await asyncio.wait_for(asyncio.gather(*calls), 60)
        assert len(results) == 12
