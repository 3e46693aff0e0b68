"""The ledger's cost models: Kinetics per call (decode as in the spec, our prefill / learn /
recurrent extensions), the 2·P·T baseline, and eFLOPs on real calls of a real backend."""

from __future__ import annotations

import pytest

from tts.cost.kinetics import INTENSITY, KineticsShape, dense_cost
from tts.cost.model import Dense2PT, KineticsCost, Usage
from tts.cost.shape import ModelShape

# The spec's toy shape: P = 1000, D = 64, r = 2.
TOY = ModelShape(params=1000, active_params=1000, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8)


def test_generate_call_is_prefill_plus_the_spec_decode():
    """No uncached prompt: exactly the spec's toy case (10 cached prompt tokens, 3 × 20 tokens)."""
    cost = KineticsCost()
    assert cost(TOY, Usage("generate", 0, 10, (20, 20, 20), 3)) == 58_027_200
    # 10 uncached prompt tokens add a prefill: 2·1000·10 + 2·64·10·11 = 34,080 FLOPs, 640 KV reads.
    assert cost(TOY, Usage("generate", 10, 0, (20, 20, 20), 3)) == 58_027_200 + 34_080 + 562.5 * 640


def test_decode_uses_each_samples_length():
    lengths = (5, 35)
    got = KineticsCost().breakdown(TOY, Usage("generate", 0, 10, lengths, 2))
    want = dense_cost(KineticsShape.from_model_shape(TOY), 10, list(lengths), 2)
    assert (got.comp, got.mem) == (want.comp, want.mem)
    assert got.eflops > KineticsCost()(TOY, Usage("generate", 0, 10, (20, 20), 2))  # E[L²] > E[L]²


def test_score_is_a_prefill_and_learn_three_of_them():
    """Extension. Score 6 new tokens after 4 cached: comp 2·1000·6 + 2·2·64·4·6 + 2·64·6·7 = 23,520;
    memory 64·10 = 640 elements."""
    cost = KineticsCost()
    c = cost.breakdown(TOY, Usage("score", 6, 4))
    assert (c.comp, c.mem) == (23_520, 640)
    assert cost(TOY, Usage("learn", 6, 4)) == pytest.approx(3 * c.eflops)


def test_recurrent_models_pay_a_state_term_that_does_not_grow_with_length():
    rwkv = ModelShape(params=1000, active_params=1000, num_layers=2, num_heads=4, num_kv_heads=4,
                      head_dim=8, state_size=300)
    cost = KineticsCost()
    one, two = (cost(rwkv, Usage("generate", 0, 10, (n,), 1)) for n in (100, 200))
    assert two == pytest.approx(2 * one)  # linear in length: no KV read growing with context
    assert cost(TOY, Usage("generate", 0, 10, (200,), 1)) > 2 * cost(TOY, Usage("generate", 0, 10, (100,), 1))


def test_rwkv_config_gets_a_state_size():
    from types import SimpleNamespace

    cfg = SimpleNamespace(model_type="rwkv7", hidden_size=256, num_attention_heads=4, head_dim=64,
                          num_hidden_layers=3, vocab_size=100, intermediate_size=1024)
    assert ModelShape.from_hf_config(cfg).state_size == 3 * (256 * 64 + 2 * 256)


def test_sparse_attention_is_cheaper_at_long_lengths():
    usage = Usage("generate", 0, 128, (16_384,), 1)
    qwen = ModelShape(params=int(8.19e9), active_params=int(8.19e9), num_layers=36, num_heads=32,
                      num_kv_heads=8, head_dim=128)
    dense = KineticsCost()(qwen, usage)
    assert dense == pytest.approx(1.16553e16, rel=1e-4)
    for attention in ("topk", "local", "block_topk"):
        assert KineticsCost(attention=attention, kv_budget=1024)(qwen, usage) < dense / 5


def test_names_profiles_and_bad_input():
    assert KineticsCost().name == "kinetics(B200)"
    assert KineticsCost(hardware="H100").intensity == INTENSITY["H100"]
    assert KineticsCost(hardware=100.0).name == "kinetics(I=100)"
    with pytest.raises(ValueError, match="unknown hardware profile 'TPU'"):
        KineticsCost(hardware="TPU")
    with pytest.raises(ValueError, match="attention must be one of"):
        KineticsCost(attention="sliding")
    with pytest.raises(ValueError, match="call kind"):
        Usage("decode", 1)
    assert Dense2PT()(TOY, Usage("generate", 10, 5, (20, 20), 2)) == 2 * 1000 * 50
    assert Usage.even("stream", 3, 7, 3).lengths == (3, 2, 2)


async def test_real_calls_carry_kinetics_eflops(hf_backend):
    """Every ledger entry of a real generate / score call is priced from its own token counts."""
    from tts.budget import Budget
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.roles import Role
    from tts.types import Problem, Sampling

    role = Role("policy", hf_backend, Sampling(n=3, temperature=1.0, max_tokens=9))
    ledger = Ledger()
    ctx = StrategyContext(Problem("q", "What is 2 + 2?"), {"policy": role}, ledger, Budget("eflops"))
    bound = ctx.role("policy")
    prompt = bound.encode("What is 2 + 2?")
    gen = await bound.generate(prompt)
    await bound.score(prompt, [5, 6, 7])
    gen_entry, score_entry = ledger.entries
    lengths = tuple(len(c.token_ids) for c in gen.completions)
    want = KineticsCost()(hf_backend.shape, Usage("generate", gen_entry.prompt_tokens,
                                                   gen_entry.cached_tokens, lengths, 3))
    assert gen_entry.eflops == pytest.approx(want) and want > 0
    assert score_entry.eflops == pytest.approx(KineticsCost()(hf_backend.shape, Usage("score", len(prompt) + 3)))
    assert ctx.budget.used == pytest.approx(gen_entry.eflops + score_entry.eflops)
