"""Kinetics cost model against the spec's hand-worked values (specs/kinetics.md)."""

from __future__ import annotations

import pytest

from tts.cost.kinetics import (INTENSITY, KineticsShape, attended_tokens, attended_tokens_closed,
                               block_topk_cost, dense_cost, phi_ratio, sparse_cost)
from tts.cost.shape import ModelShape

TOY = KineticsShape(params=1000, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8)
QWEN3_8B = KineticsShape(params=8.19e9, n_layers=36, n_heads=32, n_kv_heads=8, head_dim=128)


def test_toy_case_by_hand():
    """D = 2·2·8·2 = 64, r = 2. Compute: 2·3·1000·20 = 120,000; 2·2·3·10·64·20 = 153,600;
    2·3·64·20² = 153,600 → 427,200. Memory: 2·10·64·20 = 25,600 + 3·64·400 = 76,800 → 102,400.
    eFLOPs = 427,200 + 562.5 · 102,400 = 58,027,200."""
    assert TOY.D == 64 and TOY.r == 2
    c = dense_cost(TOY, l_in=10, l_out=20, n=3)
    assert (c.comp, c.mem, c.eflops) == (427_200, 102_400, 58_027_200)


def test_toy_sparse_case_by_hand():
    """B = 5 ≤ L_in: K = 5·20 = 100. Compute 120,000 + 2·2·3·64·100 = 196,800; memory
    2·3·64·100 = 38,400; eFLOPs = 196,800 + 562.5 · 38,400 = 21,796,800."""
    c = sparse_cost(TOY, l_in=10, l_out=20, n=3, budget=5)
    assert (c.comp, c.mem, c.eflops) == (196_800, 38_400, 21_796_800)


def test_qwen3_8b_at_16k_tokens():
    assert QWEN3_8B.D == 73_728 and QWEN3_8B.r == 4
    c = dense_cost(QWEN3_8B, l_in=128, l_out=16_384, n=1)
    assert c.comp == pytest.approx(3.4877e14, rel=1e-4)
    assert c.mem == pytest.approx(2.0100e13, rel=1e-4)
    assert c.eflops / 1e12 == pytest.approx(11_655, rel=1e-4)
    assert dense_cost(QWEN3_8B, 128, 16_384, n=8).eflops / 1e12 == pytest.approx(92_025, rel=1e-4)
    assert phi_ratio(QWEN3_8B, 128, 16_384) == pytest.approx(41.8, abs=0.05)


def test_kv_sizes_at_32k_tokens():
    small = KineticsShape(0.752e9, 28, 16, 8, 128)
    big = KineticsShape(32.76e9, 64, 64, 8, 128)
    assert small.kv_bytes_per_token() == 114_688
    assert small.kv_bytes_per_token() * 32_768 / 2**30 == pytest.approx(3.5)
    assert big.kv_bytes_per_token() * 32_768 / 2**30 == pytest.approx(8.0)


def test_exact_attended_tokens_vs_closed_form():
    assert attended_tokens(64, 10, 100) == 4_969
    assert attended_tokens_closed(64, 10, 100) == 4_942  # the closed form's documented error: 27
    assert attended_tokens(5, 10, 20) == 5 * 20 == attended_tokens_closed(5, 10, 20)


def test_dense_cost_is_affine_in_n_with_the_shared_prompt_read_as_intercept():
    one, two, five = (dense_cost(QWEN3_8B, 512, 4096, n).eflops for n in (1, 2, 5))
    slope = two - one
    assert five == pytest.approx(one + 4 * slope)
    intercept = one - slope
    assert intercept == pytest.approx(2 * INTENSITY["B200"] * 512 * QWEN3_8B.D * 4096)


def test_expectation_uses_the_second_moment():
    lengths = [100, 300]
    c = dense_cost(TOY, 10, lengths, n=2)
    by_trace = [dense_cost(TOY, 10, length, n=2).eflops for length in lengths]
    assert c.eflops == pytest.approx(sum(by_trace) / 2)  # cost is linear in L and L²
    assert c.eflops != pytest.approx(dense_cost(TOY, 10, 200, n=2).eflops)  # E[L²] ≠ E[L]²


def test_block_topk_adds_the_search_cost():
    sparse = sparse_cost(QWEN3_8B, 128, 8192, 1, budget=1024)
    block = block_topk_cost(QWEN3_8B, 128, 8192, 1, budget=1024)
    bs = 16
    assert block.comp - sparse.comp == pytest.approx((2 * 4 * 128 * QWEN3_8B.D * 8192 + 4 * QWEN3_8B.D * 8192**2) / (2 * bs))
    assert block.eflops < dense_cost(QWEN3_8B, 128, 8192).eflops


def test_from_model_shape_uses_active_parameters():
    shape = ModelShape(params=30_000, active_params=3_000, num_layers=2, hidden_size=32, num_heads=4,
                       num_kv_heads=2, head_dim=8)
    k = KineticsShape.from_model_shape(shape)
    assert k.params == 3_000 and k.D == 64
